#!/bin/sh
# Never reads its stdin.
echo ready
exec sleep 60
