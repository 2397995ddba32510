#!/bin/sh
# Answers once the file $WAIT_FILE exists (for the limit test).
while [ ! -e "$WAIT_FILE" ]; do sleep 0.02; done
printf 'Content-Type: text/plain\n\nwaited\n'
