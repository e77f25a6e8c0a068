# Offline plan/apply of the whole stack against a mocked AWS provider
# (`terraform test`, run by infra/check.sh). No credentials, no API calls:
# this exercises count/for_each, expressions and the scheduling contract.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c"]
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_eks_cluster" {
    defaults = {
      arn      = "arn:aws:eks:us-east-1:111122223333:cluster/mlops-kfp"
      endpoint = "https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
      certificate_authority = [{
        data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
      }]
      identity = [{
        oidc = [{
          issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
        }]
      }]
    }
  }

  mock_resource "aws_eks_node_group" {
    defaults = {
      resources = [{
        autoscaling_groups = [{
          name = "eks-gpu-0123"
        }]
        remote_access_security_group_id = ""
      }]
    }
  }

  mock_resource "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::111122223333:role/mocked"
    }
  }

  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::mocked"
    }
  }

  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:us-east-1:111122223333:key/mocked"
    }
  }
}

run "defaults" {
  command = apply

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2
    error_message = "expected 2 public and 2 private subnets"
  }

  assert {
    condition     = toset(aws_subnet.private[*].availability_zone) == toset(["us-east-1a", "us-east-1b"])
    error_message = "private subnets must span the first two AZs"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "single_nat_gateway=true must create one NAT gateway"
  }

  assert {
    condition     = aws_eks_node_group.gpu.scaling_config[0].min_size == 0
    error_message = "GPU pool must scale to zero"
  }

  assert {
    condition     = aws_eks_node_group.gpu.labels["nvidia.com/gpu.present"] == "true"
    error_message = "GPU nodes must carry nvidia.com/gpu.present=true"
  }

  assert {
    condition = anytrue([
      for t in aws_eks_node_group.gpu.taint :
      t.key == "nvidia.com/gpu" && t.value == "present" && t.effect == "NO_SCHEDULE"
    ])
    error_message = "GPU nodes must be tainted nvidia.com/gpu=present:NoSchedule"
  }

  assert {
    condition     = contains(["AL2023_x86_64_NVIDIA", "AL2_x86_64_GPU"], aws_eks_node_group.gpu.ami_type)
    error_message = "GPU node group must use an NVIDIA AMI"
  }

  assert {
    condition     = length(aws_eks_node_group.cpu.taint) == 0
    error_message = "CPU pool must not be tainted"
  }

  assert {
    condition     = aws_autoscaling_group_tag.gpu_template["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"].tag[0].value == "present:NoSchedule"
    error_message = "autoscaler node-template taint tag is wrong"
  }

  assert {
    condition = output.bucket_names == {
      pipeline_root    = "mlops-111122223333-pipeline-root"
      dvc_remote       = "mlops-111122223333-dvc-remote"
      mlflow_artifacts = "mlops-111122223333-mlflow-artifacts"
    }
    error_message = "unexpected bucket names"
  }

  assert {
    condition     = output.pipeline_root == "s3://mlops-111122223333-pipeline-root/pipelines"
    error_message = "unexpected pipeline root"
  }

  assert {
    condition = alltrue([
      for k, b in aws_s3_bucket_public_access_block.this :
      b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets
    ])
    error_message = "all buckets must block public access"
  }

  assert {
    condition     = alltrue([for k, v in aws_s3_bucket_versioning.this : v.versioning_configuration[0].status == "Enabled"])
    error_message = "all buckets must be versioned"
  }

  assert {
    condition     = length(aws_s3_bucket_server_side_encryption_configuration.this) == 3
    error_message = "all buckets must be encrypted"
  }

  assert {
    condition     = output.gpu_node_taint == { key = "nvidia.com/gpu", value = "present", effect = "NoSchedule" }
    error_message = "gpu_node_taint output is wrong"
  }

  assert {
    condition     = output.gpu_node_label == { key = "nvidia.com/gpu.present", value = "true" }
    error_message = "gpu_node_label output is wrong"
  }

  assert {
    condition = contains(
      flatten([
        for c in data.aws_iam_policy_document.workload_assume.statement[0].condition :
        c.values if endswith(c.variable, ":sub")
      ]),
      "system:serviceaccount:kubeflow-user-example-com:default-editor"
    )
    error_message = "the workload role must trust the default profile's default-editor service account (multi-user Kubeflow)"
  }

  assert {
    condition     = aws_iam_openid_connect_provider.eks.thumbprint_list == null || length(aws_iam_openid_connect_provider.eks.thumbprint_list) == 0
    error_message = "no thumbprint should be sent when oidc_thumbprints is empty"
  }
}

run "per_az_nat_and_explicit_zones" {
  command = apply

  variables {
    single_nat_gateway = false
    availability_zones = ["eu-west-1b", "eu-west-1c"]
    region             = "eu-west-1"
    cluster_name       = "mlops-prod"
    bucket_prefix      = "mlops-prod"
    oidc_thumbprints   = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 2 && aws_route_table.private[1].route != aws_route_table.private[0].route
    error_message = "single_nat_gateway=false must give each private subnet its own NAT"
  }

  assert {
    condition     = aws_subnet.public[1].availability_zone == "eu-west-1c"
    error_message = "explicit availability_zones must be used"
  }

  assert {
    condition     = aws_ecr_repository.this["pipeline"].name == "mlops-prod/pipeline"
    error_message = "ECR repository names derive from cluster_name"
  }
}

run "profile_namespaces_bound_to_the_workload_role" {
  command = plan

  variables {
    kubeflow_profile_namespaces = ["team-a", "team-b"]
  }

  assert {
    condition = toset(flatten([
      for c in data.aws_iam_policy_document.workload_assume.statement[0].condition :
      c.values if endswith(c.variable, ":sub")
      ])) == toset([
      "system:serviceaccount:kubeflow:pipeline-runner",
      "system:serviceaccount:kubeflow:ml-pipeline-ui",
      "system:serviceaccount:mlops:mlflow",
      "system:serviceaccount:team-a:default-editor",
      "system:serviceaccount:team-b:default-editor",
    ])
    error_message = "the trust policy must list the fixed service accounts plus default-editor of every profile namespace"
  }

  assert {
    condition     = contains(output.irsa_service_accounts, "team-b:default-editor")
    error_message = "irsa_service_accounts output must list the profile service accounts"
  }
}

run "rejects_bad_profile_namespace" {
  command = plan

  variables {
    kubeflow_profile_namespaces = ["Team_A"]
  }

  expect_failures = [var.kubeflow_profile_namespaces]
}

run "rejects_bad_bucket_prefix" {
  command = plan

  variables {
    bucket_prefix = "Bad_Prefix"
  }

  expect_failures = [var.bucket_prefix]
}

run "rejects_three_zones" {
  command = plan

  variables {
    availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
  }

  expect_failures = [var.availability_zones]
}
