#!/bin/sh
# Writes a line to stderr for each message, and answers ok.
while IFS= read -r line; do
	echo "complaint: $line" >&2
	echo ok
done
