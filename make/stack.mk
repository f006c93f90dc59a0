# Stack targets: build, validate and deploy template.yaml with the SAM CLI.
# Included from the top-level Makefile (`include make/stack.mk`); usable alone too:
#   make -f make/stack.mk validate
#
# The SAM CLI and checkov have heavy pinned dependencies, so they live in their own venv under
# .cache/ (made on first use), not in the project's .venv. cfn-lint and aws-sam-translator come from
# the project's .venv (the `dev` extra), where the tests use them too; $(STAMP), when the top-level
# Makefile defines it, builds that .venv first.

SAM_CLI_VERSION   ?= 1.170.0
CHECKOV_VERSION   ?= 3.2.459
SAM_TOOLS_PYTHON  ?= python3.11
SAM_TOOLS_VENV    ?= .cache/sam-venv
SAM_TOOLS_STAMP   := $(SAM_TOOLS_VENV)/.installed-sam-$(SAM_CLI_VERSION)-checkov-$(CHECKOV_VERSION)
SAM               := $(SAM_TOOLS_VENV)/bin/sam
CHECKOV           := $(SAM_TOOLS_VENV)/bin/checkov

STACK_PYTHON      ?= .venv/bin/python
STACK_CFN_LINT    ?= .venv/bin/cfn-lint
STACK_TRANSLATED  ?= .aws-sam/translated.json
# Which [ENV] table of samconfig.toml `make deploy` uses: make deploy STACK_CONFIG_ENV=attach
STACK_CONFIG_ENV  ?= default
# The deployed stack `make outputs` reads (stack_name in samconfig.toml).
STACK_NAME        ?= opsworks-trail

# Never send SAM CLI telemetry, from any target. Validation needs a Region name but no account.
export SAM_CLI_TELEMETRY := 0
STACK_LINT_REGION ?= us-east-1

.PHONY: build validate deploy outputs sam-tools

sam-tools: $(SAM_TOOLS_STAMP) ## Install the SAM CLI and checkov into .cache/sam-venv (pinned)

$(SAM_TOOLS_STAMP):
	rm -rf $(SAM_TOOLS_VENV)
	$(SAM_TOOLS_PYTHON) -m venv $(SAM_TOOLS_VENV)
	$(SAM_TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	    "aws-sam-cli==$(SAM_CLI_VERSION)" "checkov==$(CHECKOV_VERSION)"
	touch $@

build: $(SAM_TOOLS_STAMP) $(STAMP) ## Build the Lambda package (make/lambda: arm64 wheels, no Docker) into .aws-sam/build
	$(SAM) build --template-file template.yaml

validate: $(SAM_TOOLS_STAMP) $(STAMP) ## sam validate --lint, cfn-lint on the SAM and translated templates, checkov
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(STACK_LINT_REGION)} $(SAM) validate --lint --template-file template.yaml
	PYTHONPATH=. $(STACK_PYTHON) tests/template_schema.py $(STACK_TRANSLATED)  # workshop/ (the template reader) is not installed
	$(STACK_CFN_LINT) --regions $(STACK_LINT_REGION) -- template.yaml $(STACK_TRANSLATED)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f $(STACK_TRANSLATED)
	@echo "validate: sam validate, cfn-lint (SAM + translated) and checkov passed"

deploy: build ## Deploy with samconfig.toml (STACK_CONFIG_ENV=default|attach_eventbridge|attach_sns)
	$(SAM) deploy --config-file samconfig.toml --config-env $(STACK_CONFIG_ENV)

outputs: $(STAMP) ## Print the deployed stack's outputs, the ready-made backfill commands among them
	$(STACK_PYTHON) -c 'import sys, boto3; stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]; print("\n".join(o["OutputKey"] + "\t" + o["OutputValue"] for o in stack.get("Outputs", [])))' $(STACK_NAME)
