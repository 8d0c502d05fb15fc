"""The deployment files agree with each other: the Dockerfile builds the image the Helm values
run, and the install steps use one namespace for the install and for the run launcher."""

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def dockerfile_cmd() -> list[str]:
    (line,) = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    return yaml.safe_load(line[len("CMD ") :])


def test_the_image_serves_the_code_location_the_helm_values_name_on_their_port():
    values = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    command = dockerfile_cmd()
    assert command[:3] == ["dagster", "api", "grpc"]
    module = command[command.index("--module-name") + 1]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module] and module == "mds_assets.definitions"
    assert command[command.index("--port") + 1] == str(deployment["port"])
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"EXPOSE {deployment['port']}" in dockerfile
    for package in ("writer", "mds_assets"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert re.search(r"ARG EXTRAS=.*\bk8s\b", dockerfile) and re.search(r"ARG EXTRAS=.*\bs3\b", dockerfile)


def test_no_deployment_file_sets_a_namespace_variable_nothing_reads():
    for path in (REPO / "deploy").iterdir():
        assert "MDS_K8S_NAMESPACE" not in path.read_text(), path


def test_the_install_steps_use_one_namespace_for_the_install_and_the_run_launcher():
    operations = (REPO / "docs" / "operations.md").read_text()
    (install,) = re.findall(r"```bash\n(NAMESPACE=.*?)```", operations, re.S)
    lines = install.replace("\\\n", " ").splitlines()
    commands = [command for command in (shlex.split(line, comments=True) for line in lines) if command]
    assert commands[0] == ["NAMESPACE=dagster"]
    assert ["kubectl", "create", "namespace", "$NAMESPACE"] in commands
    helm = next(c for c in commands if c[:3] == ["helm", "upgrade", "--install"])
    assert helm[helm.index("-n") + 1] == "$NAMESPACE"
    assert "runLauncher.config.k8sRunLauncher.jobNamespace=$NAMESPACE" in helm
    for command in commands:
        if command[:3] == ["kubectl", "create", "secret"]:
            assert command[command.index("-n") + 1] == "$NAMESPACE", command
