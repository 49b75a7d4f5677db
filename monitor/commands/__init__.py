"""One module per `monitor` command; each defines `register(subparsers)`."""
