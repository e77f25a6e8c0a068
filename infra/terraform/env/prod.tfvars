# terraform workspace select -or-create prod
# terraform apply -var-file=env/prod.tfvars
region             = "us-east-1"
cluster_name       = "mlops-prod"
bucket_prefix      = "mlops-prod"
kubernetes_version = "1.31"

single_nat_gateway = false

cpu_instance_types = ["m6i.2xlarge"]
cpu_min_size       = 2
cpu_desired_size   = 2
cpu_max_size       = 6

gpu_instance_type = "g5.2xlarge"
gpu_capacity_type = "ON_DEMAND"
gpu_min_size      = 0
gpu_desired_size  = 0
gpu_max_size      = 4

tags = {
  environment = "prod"
}
