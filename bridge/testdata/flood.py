#!/usr/bin/env python3
# Writes numbered 100-byte lines (with the newline) as fast as the pipe takes them, forever.
import sys
pad = "x" * 91
out = sys.stdout
i = 0
while True:
    i += 1
    out.write("%07d %s\n" % (i, pad))
