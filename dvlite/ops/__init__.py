"""One module per verb: orchestration over workspace, repo and storage; never prints."""
