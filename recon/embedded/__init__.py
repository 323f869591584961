"""`recon serve`: the whole service on one machine (private Redis, one worker, the API)."""
