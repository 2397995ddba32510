#!/bin/sh
# echo.sh: a per-connection program for wsloop -exec (websocketd style).
# Each message arrives as one line on stdin; each line written to stdout is
# one message to the client. The client closing the connection closes stdin,
# which ends the loop.
#
#   wsloop -exec '/ws/echo-sh=examples/exec/echo.sh'
while IFS= read -r line; do
	printf '%s\n' "$line"
done
