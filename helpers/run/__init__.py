"""acigen run: run an ACI (unpacked once into a cache) in a throw-away container."""
