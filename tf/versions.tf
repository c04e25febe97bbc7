terraform {
  # 1.11: the S3 backend's use_lockfile (S3-native state locking) is generally available (backend.tf);
  # 1.9: input validations may refer to other variables (the name-length check in variables.tf);
  # 1.5: `check` blocks and the optional() defaults used in the typed inputs.
  required_version = ">= 1.11.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.49 is the first release with aws_kms_key.rotation_period_in_days (kms.tf). The exact version
      # in use is pinned, with its package checksums, by .terraform.lock.hcl (docs/terraform.md).
      version = ">= 5.49.0, < 7.0.0"
    }
  }
}
