"""Lambda entry points (ingest.lambda_handler) and their Powertools wiring (observability).

Thin: a trigger becomes object refs, Outcomes become the trigger's reply. May import core/ingest/ and
core's base only: the function's package ships nothing else (make/lambda/Makefile); never cli/.
"""
