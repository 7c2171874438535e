"""Display names shared by the report, the gate and MLflow tags."""

MODELS = {
    "random": "Random encoder",
    "jepa": "JEPA",
    "sparse_jepa": "SparseJEPA",
}

DATASETS = {
    "fashion_mnist": "FashionMNIST",
    "cifar100": "CIFAR-100",
    "places205": "Places205",
    "clevr_count": "CLEVR/Count",
    "inat18": "iNat18",
}


def model_name(key: str) -> str:
    return MODELS.get(key, key)


def dataset_name(key: str) -> str:
    return DATASETS.get(key, key)
