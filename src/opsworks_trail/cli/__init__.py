"""The `opsworks-trail` command (main): one module per command over the same core the function runs.

Works from any folder once installed: nothing here reads the checkout (DynamoDB Local's files live under
$OPSWORKS_TRAIL_CACHE, default ~/.cache/opsworks-trail). May import every folder of the package.
"""
