"""The `opsworks-trail` command (main): one module per command over the same core the function runs,
and what renders for people (present/).

Works from any folder once installed: nothing here reads the checkout (DynamoDB Local's files live under
$OPSWORKS_TRAIL_CACHE, default ~/.cache/opsworks-trail). May import core/; never handlers/.
"""
