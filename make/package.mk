# `make package`: build the Lambda package with make/lambda's recipe (the one `sam build` runs) and show
# what it holds and its size, unzipped and zipped. LAMBDA_ARCH=x86_64 builds it for an x86 machine instead of
# the template's arm64. Output: .cache/lambda-package-$(LAMBDA_ARCH).
LAMBDA_ARCH ?= aarch64

.PHONY: package

package: $(STAMP) ## Build the Lambda package (make/lambda) and show its contents and size, zipped and unzipped
	$(PY) scripts/lambda_package.py show --arch $(LAMBDA_ARCH)
