terraform {
  # 1.5 brings `check` blocks and the optional() defaults used in the typed inputs below.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x is the oldest line with log_group_class and metric-math target tracking; 6.x is tested too.
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}
