terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the exact build that ships in the offline provider mirror
    # (/opt/tf-plugins). Bump together with .terraform.lock.hcl.
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }

  # State is local by default. For a shared environment add a backend, e.g.
  #   backend "s3" {}
  # and pass bucket/key/region/dynamodb_table with `terraform init -backend-config=...`.
}

provider "aws" {
  region = var.region

  # Credentials come from the standard AWS chain (env vars, SSO profile,
  # instance role). Nothing is configured here on purpose.
  default_tags {
    tags = local.tags
  }
}
