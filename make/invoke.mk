# `make invoke EVENT=events/NAME.json`: the template's handler, in-process, on one sample event, against
# DynamoDB Local and a moto S3 holding the sample trail bucket the events/ files point at (workshop/invoke.py).
# DYNAMODB_ENDPOINT / S3_ENDPOINT use services already running instead.

EVENT             ?= events/sqs-s3.json
INVOKE_ARGS       ?=

.PHONY: invoke

invoke: $(STAMP) ## Run the handler on EVENT=events/NAME.json against DynamoDB Local + a seeded local S3
	@test -f "$(EVENT)" || { echo "make invoke: no such event file: $(EVENT) (see events/)"; exit 2; }
	$(PY) -m workshop.invoke $(EVENT) $(if $(DYNAMODB_ENDPOINT),--dynamodb-endpoint $(DYNAMODB_ENDPOINT)) \
	    $(if $(S3_ENDPOINT),--s3-endpoint $(S3_ENDPOINT)) $(INVOKE_ARGS)
