# terraform workspace select -or-create dev
# terraform apply -var-file=env/dev.tfvars
region             = "us-east-1"
cluster_name       = "mlops-dev"
bucket_prefix      = "mlops-dev"
kubernetes_version = "1.31"

cpu_instance_types = ["m6i.xlarge"]
cpu_min_size       = 1
cpu_desired_size   = 2
cpu_max_size       = 3

gpu_instance_type = "g5.xlarge"
gpu_capacity_type = "SPOT"
gpu_min_size      = 0
gpu_desired_size  = 0
gpu_max_size      = 1

bucket_force_destroy = true

tags = {
  environment = "dev"
}
