"""Reference requests: the modules of the requests a company sends out and lists."""
