#!/bin/sh
# Answers with its request body (standard input) in capitals.
echo "Content-Type: text/plain"
echo
tr 'a-z' 'A-Z'
