#!/bin/sh
# Answers with its environment as the body, one variable per line.
echo "Content-Type: text/plain"
echo "X-Script: env"
echo
env
echo "complaint from env.cgi" >&2
