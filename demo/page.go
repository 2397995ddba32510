package demo

import "embed"

// pageFS is the demo page: plain HTML and JavaScript, no external resources.
//
//go:embed page/index.html page/app.js
var pageFS embed.FS
