# ---------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------

variable "region" {
  description = "AWS region that hosts the VPC, the EKS cluster and the buckets."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "Name of the EKS cluster. Also used as the name prefix of the VPC, IAM roles and ECR repositories."
  type        = string
  default     = "mlops-kfp"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,37}$", var.cluster_name))
    error_message = "cluster_name must start with a lowercase letter, use only lowercase letters, digits and '-', and be at most 38 characters (IAM role and ECR repository names are derived from it)."
  }
}

variable "kubernetes_version" {
  description = "EKS control-plane Kubernetes version (major.minor). Node groups follow it."
  type        = string
  default     = "1.31"
}

variable "tags" {
  description = "Extra tags merged into the default tags of every AWS resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC. Public subnets get /24s at the bottom of it, private subnets /20s above them."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a valid IPv4 CIDR of size /16 or larger."
  }
}

variable "availability_zones" {
  description = "Exactly two AZs to spread subnets over. Empty means the first two available AZs of the region."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones must be empty (auto) or list exactly two zones."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for both private subnets (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint. Narrow this to your office/VPN/CI ranges."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# ---------------------------------------------------------------------------
# CPU node group (KFP control plane, MLflow, CPU pipeline steps)
# ---------------------------------------------------------------------------

variable "cpu_instance_types" {
  description = "Instance types of the CPU managed node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "cpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the CPU node group."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.cpu_capacity_type)
    error_message = "cpu_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "cpu_min_size" {
  description = "Minimum number of CPU nodes. KFP itself needs at least one."
  type        = number
  default     = 1
}

variable "cpu_desired_size" {
  description = "Initial number of CPU nodes (later owned by the cluster autoscaler, changes are ignored)."
  type        = number
  default     = 2
}

variable "cpu_max_size" {
  description = "Maximum number of CPU nodes."
  type        = number
  default     = 4
}

variable "cpu_disk_size" {
  description = "Root volume size (GiB) of CPU nodes."
  type        = number
  default     = 50
}

# ---------------------------------------------------------------------------
# GPU node group (Trainer / Tuner steps)
# ---------------------------------------------------------------------------

variable "gpu_instance_type" {
  description = "Instance type of the GPU managed node group (g5.xlarge = 1x A10G)."
  type        = string
  default     = "g5.xlarge"
}

variable "gpu_count_per_node" {
  description = "GPUs per GPU instance. Advertised to the cluster autoscaler so it can scale the pool up from zero."
  type        = number
  default     = 1
}

variable "gpu_ami_type" {
  description = "EKS AMI type of the GPU node group. The NVIDIA variants ship the driver and container toolkit; the device plugin is deployed from infra/k8s."
  type        = string
  default     = "AL2023_x86_64_NVIDIA"

  validation {
    condition     = contains(["AL2023_x86_64_NVIDIA", "AL2_x86_64_GPU"], var.gpu_ami_type)
    error_message = "gpu_ami_type must be AL2023_x86_64_NVIDIA or AL2_x86_64_GPU."
  }
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the GPU node group."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "gpu_min_size" {
  description = "Minimum number of GPU nodes. Keep 0 so the pool costs nothing while no training runs."
  type        = number
  default     = 0

  validation {
    condition     = var.gpu_min_size >= 0
    error_message = "gpu_min_size cannot be negative."
  }
}

variable "gpu_desired_size" {
  description = "Initial number of GPU nodes (later owned by the cluster autoscaler, changes are ignored)."
  type        = number
  default     = 0
}

variable "gpu_max_size" {
  description = "Maximum number of GPU nodes."
  type        = number
  default     = 2

  validation {
    condition     = var.gpu_max_size >= 1
    error_message = "gpu_max_size must be at least 1 (EKS rejects a node group whose max size is 0)."
  }
}

variable "gpu_disk_size" {
  description = "Root volume size (GiB) of GPU nodes. The TFX/CUDA image is large; leave head room."
  type        = number
  default     = 100
}

# ---------------------------------------------------------------------------
# Storage and identity
# ---------------------------------------------------------------------------

variable "bucket_prefix" {
  description = "Prefix of the S3 bucket names. Bucket names are <prefix>-<account id>-<purpose> so they are globally unique."
  type        = string
  default     = "mlops"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,18}[a-z0-9]$", var.bucket_prefix))
    error_message = "bucket_prefix must be 3-20 characters of lowercase letters, digits and '-', not starting or ending with '-'."
  }
}

variable "bucket_force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets. Leave false outside throw-away environments."
  type        = bool
  default     = false
}

variable "noncurrent_version_retention_days" {
  description = "Days to keep non-current object versions in the buckets before they expire."
  type        = number
  default     = 90
}

variable "oidc_thumbprints" {
  description = "Optional SHA-1 thumbprints of the EKS OIDC issuer's root CA. The tls provider is not used (offline mirror has only aws); empty lets IAM use its trusted CA store, which is what AWS does for EKS issuers today."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.oidc_thumbprints : can(regex("^[0-9a-fA-F]{40}$", t))])
    error_message = "Each thumbprint must be 40 hex characters."
  }
}

variable "irsa_service_accounts" {
  description = "Kubernetes service accounts (\"namespace:name\") allowed to assume the workload role that reads/writes the buckets: KFP pipeline pods, the KFP UI (artifact preview) and the MLflow server."
  type        = list(string)
  default = [
    "kubeflow:pipeline-runner",
    "kubeflow:ml-pipeline-ui",
    "mlops:mlflow",
  ]

  validation {
    condition     = alltrue([for s in var.irsa_service_accounts : can(regex("^[a-z0-9-]+:[a-z0-9.-]+$", s))])
    error_message = "Each entry must look like namespace:serviceaccount."
  }
}

variable "kubeflow_profile_namespaces" {
  description = "Namespaces of Kubeflow profiles (multi-user Kubeflow) whose pipeline pods run as <namespace>:default-editor; that service account of each is allowed to assume the workload role."
  type        = list(string)
  default     = ["kubeflow-user-example-com"]

  validation {
    condition     = alltrue([for ns in var.kubeflow_profile_namespaces : can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", ns))])
    error_message = "Each entry must be a Kubernetes namespace name (lowercase letters, digits and '-')."
  }
}
