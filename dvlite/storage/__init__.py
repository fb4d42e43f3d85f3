"""Content-addressed plumbing: hashing, object stores, manifests, links, the stat index."""
