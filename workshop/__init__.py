"""The workshop: developer tools that live beside the product and are never installed with it.

- ``demo`` (``make demo``): the whole flow on a generated sample bucket, locally.
- ``synthetic`` and ``sample_data/``: the sample trail bucket and large trail files; what their records
  say (people and roles, other services' calls, the OpsWorks stories) is plain Python in
  ``sample_data/`` (docs/sample-data.md); ``sample_digests`` signs and chains the bucket's digest files
  with a demo key.
- ``invoke`` (``make invoke``): the Lambda handler run in-process against moto.
- ``template``: reads ``template.yaml`` from the checkout.

Tests, the benchmark (``bench/``) and make targets may import the workshop; ``src/``
never does, since the wheel does not ship it.
"""
