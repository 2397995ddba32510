#!/bin/sh
# broadcast.sh: a shared backend for wsloop -backend in POSIX shell. Every
# connection joins the room "all"; every message (text or binary) goes to
# everyone in it, the sender included.
#
#   wsloop -backend '/ws/all=examples/backend/broadcast.sh'
#
# No JSON parser is needed: wsloop writes an event's fields in a fixed order,
#   {"event":"open","id":"0.17","path":...}
#   {"event":"message","id":"0.17","text":"hi"}
# so the id is the text between the first '"id":"' and the next quote, and a
# message's payload field is everything after the id, ready to be reused.
# read -r keeps JSON's backslash escapes as they are.
open='{"event":"open","id":"'
message='{"event":"message","id":"'
while IFS= read -r line; do
	case $line in
	"$open"*)
		rest=${line#"$open"}
		printf '{"cmd":"join","id":"%s","room":"all"}\n' "${rest%%\"*}"
		;;
	"$message"*)
		rest=${line#"$message"}       # 0.17","text":"hi"}
		printf '{"cmd":"publish","room":"all",%s\n' "${rest#*\",}"
		;;
	esac
done
