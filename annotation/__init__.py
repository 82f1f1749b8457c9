"""Human verification of filtered items in a Label Studio server."""
