data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state = "available"

  # Local Zones / Wavelength zones cannot host EKS node groups.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  azs = length(var.availability_zones) > 0 ? var.availability_zones : slice(data.aws_availability_zones.available.names, 0, 2)

  tags = merge(
    {
      "project"    = "mlops"
      "managed-by" = "terraform"
      "cluster"    = var.cluster_name
    },
    var.tags,
  )

  # Scheduling contract for GPU work. The same values are used by the node
  # group, the NVIDIA device plugin DaemonSet (infra/k8s) and the pipeline
  # compiler (trainer/tuner tasks), and are exported as outputs.
  gpu_node_label_key    = "nvidia.com/gpu.present"
  gpu_node_label_value  = "true"
  gpu_taint_key         = "nvidia.com/gpu"
  gpu_taint_value       = "present"
  gpu_taint_effect_eks  = "NO_SCHEDULE" # EKS API spelling
  gpu_taint_effect_k8s  = "NoSchedule"  # Kubernetes spelling
  cpu_node_label_key    = "mlops/pool"
  cpu_node_label_value  = "cpu"
  oidc_issuer_host_path = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}
