module github.com/msnbridge/msnbridge

go 1.26.0
