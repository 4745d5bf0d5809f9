# No provider block: as a root module the AWS provider reads AWS_REGION and
# the default credential chain; as a child module it inherits the caller's.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # deletion_protection_enabled on aws_dynamodb_table needs 4.61 or later;
      # 5 and 6 both work (no data.aws_region attribute, see local.region).
      version = ">= 5.0, < 7.0"
    }
  }
}
