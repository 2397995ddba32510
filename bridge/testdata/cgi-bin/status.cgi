#!/bin/sh
# Answers 201 with a Location header.
printf 'Status: 201 Created\r\nLocation: /made/1\r\nContent-Type: text/plain\r\n\r\nmade\n'
