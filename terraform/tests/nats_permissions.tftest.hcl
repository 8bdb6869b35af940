# Plans the root module against a mocked AWS provider (no credentials, no network) and checks that
# the NATS permissions the nodes get were made for the worker groups deployed, each with its password.
mock_provider "aws" {
  override_during = plan
  mock_data "aws_region" {
    defaults = { name = "eu-west-1", region = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_subnet" {
    defaults = { availability_zone = "eu-west-1a", cidr_block = "10.0.1.0/24" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

# Three subnets in three zones, as the NATS module requires.
override_data {
  target = module.nats.data.aws_subnet.node[0]
  values = { availability_zone = "eu-west-1a" }
}
override_data {
  target = module.nats.data.aws_subnet.node[1]
  values = { availability_zone = "eu-west-1b" }
}
override_data {
  target = module.nats.data.aws_subnet.node[2]
  values = { availability_zone = "eu-west-1c" }
}

variables {
  vpc_id                           = "vpc-1"
  vpc_cidr                         = "10.0.0.0/16"
  public_subnet_ids                = ["subnet-a", "subnet-b"]
  private_subnet_ids               = ["subnet-1", "subnet-2", "subnet-3"]
  image                            = "edge:1"
  certificate_arn                  = "arn:aws:acm:eu-west-1:123456789012:certificate/x"
  access_logs_bucket               = "logs"
  admin_token_secret_arn           = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:admin"
  llm_api_keys_secret_arn          = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:llm"
  tls_cert_secret_arn              = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cert"
  tls_key_secret_arn               = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key"
  nats_ca_secret_arn               = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ca"
  nats_edge_password_secret_arn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pe"
  nats_worker_password_secret_arns = { ai = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw" }
  nats_signing_keys_secret_arn     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sk"
  nats_server_cert_secret_arn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:scert"
  nats_server_key_secret_arn       = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:skey"
  nats_auth_config_secret_arn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth"
}

run "the_shipped_permissions_fit_the_default_groups" {
  command = plan
  assert {
    condition     = terraform_data.nats_permissions_contract.input == sha256(file("nats-permissions.conf"))
    error_message = "the default permissions are used"
  }
}

run "permissions_made_for_other_groups_are_refused" {
  command = plan
  variables {
    worker_groups = { ai = { services = ["llm", "story"] }, bulk = { services = ["kb"] } }
    nats_worker_password_secret_arns = {
      ai   = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw"
      bulk = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pb"
    }
  }
  expect_failures = [terraform_data.nats_permissions_contract]
}

run "a_group_without_a_password_is_refused" {
  command = plan
  variables {
    nats_worker_password_secret_arns = {}
  }
  expect_failures = [terraform_data.nats_permissions_contract]
}
