#!/bin/sh
# Exits with the status given in the first message.
IFS= read -r status
echo "exiting with $status"
exit "$status"
