#!/bin/sh
# Ignores SIGTERM (logging it) and leaves a child that ignores it too, so
# that only SIGKILL of the whole process group ends them. It logs to $LOG:
# EOF when stdin closes, TERM when SIGTERM arrives.
trap 'echo TERM >>"$LOG"' TERM
(trap '' TERM; exec sleep 100) &
echo "child $!"
while IFS= read -r line; do :; done
echo EOF >>"$LOG"
while :; do sleep 0.05; done
