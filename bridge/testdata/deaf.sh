#!/bin/sh
# A backend that never reads its input.
exec sleep 60
