"""What we hand the state IT provider besides the image: docker/compose.yaml parsed and checked
for what it must hold (no compose engine runs here), its example environment, and that the
real environment file stays out of git."""

import json
import os
import re
import subprocess
import unittest

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE = os.path.join(ROOT, "docker", "compose.yaml")
EXAMPLE = os.path.join(ROOT, "docker", "kqe.env.example")


def kqe_services(compose):
    return {name: s for name, s in compose["services"].items()
            if str(s.get("image", "")).startswith("localhost/kqe:")}


class VersionTest(unittest.TestCase):
    def test_the_version_is_the_same_everywhere(self):
        """CMakeLists.txt (the binaries' --version), the image's label, the manifests' image
        tag and the OpenAPI's info.version name one release (docs/releases.md)."""
        def find(path, pattern):
            with open(os.path.join(ROOT, path)) as f:
                return re.search(pattern, f.read(), re.M).group(1)
        versions = {
            "CMakeLists.txt": find("CMakeLists.txt", r"^project\(kqe VERSION ([\d.]+) "),
            "docker/Dockerfile": find("docker/Dockerfile", r"^ARG VERSION=([\d.]+)$"),
            "deploy/k8s/base/kustomization.yaml": find("deploy/k8s/base/kustomization.yaml",
                                                       r"newTag: ([\d.]+)$"),
            "proto/openapi.yaml": find("proto/openapi.yaml", r"^  version: ([\d.]+)$"),
        }
        self.assertEqual(len(set(versions.values())), 1, versions)


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(COMPOSE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.compose = yaml.safe_load(cls.text)

    def test_the_services_and_their_engines(self):
        services = self.compose["services"]
        self.assertEqual(set(services), {"postgres", "redis", "migrate", "api", "aggregator"})
        self.assertEqual(services["postgres"]["image"], "postgres:15")
        self.assertEqual(services["redis"]["image"], "redis:7")
        command = services["redis"]["command"]
        self.assertEqual(command[command.index("--appendonly") + 1], "yes")
        for name in ("postgres", "redis"):
            self.assertIn("test", services[name]["healthcheck"], name)
            self.assertTrue(any(":" in v for v in services[name]["volumes"]), name)

    def test_migration_first_then_two_api_replicas_and_an_aggregator(self):
        s = self.compose["services"]
        self.assertEqual(s["migrate"]["command"], ["kqe", "migrate"])
        self.assertEqual(s["migrate"]["restart"], "no")
        self.assertEqual(s["migrate"]["depends_on"]["postgres"]["condition"], "service_healthy")
        self.assertIn("KQE_DATABASE_ADMIN_URL", s["migrate"]["environment"])
        self.assertEqual(s["api"]["deploy"]["replicas"], 2)
        self.assertEqual(s["api"]["healthcheck"]["test"], ["CMD", "kqe", "health"])
        for name in ("api", "aggregator"):
            deps = s[name]["depends_on"]
            self.assertEqual(deps["migrate"]["condition"], "service_completed_successfully")
            self.assertEqual(deps["redis"]["condition"], "service_healthy")
        self.assertEqual(s["aggregator"]["command"], ["kqe-aggregator"])
        self.assertTrue(s["aggregator"]["healthcheck"]["disable"])

    def test_kqe_containers_are_locked_down(self):
        services = kqe_services(self.compose)
        self.assertEqual(set(services), {"migrate", "api", "aggregator"})
        for name, s in services.items():
            with self.subTest(service=name):
                self.assertIs(s["read_only"], True)
                self.assertEqual(s["tmpfs"], ["/tmp"])
                self.assertEqual(s["user"], "10001:10001")
                self.assertEqual(s["cap_drop"], ["ALL"])
                self.assertIn("no-new-privileges:true", s["security_opt"])
                self.assertEqual(s["env_file"], "kqe.env")
                self.assertEqual(s["build"]["dockerfile"], "docker/Dockerfile")

    def test_secrets_come_from_the_ignored_env_file_and_the_example_names_them(self):
        with open(EXAMPLE, encoding="utf-8") as f:
            example = {line.split("=", 1)[0] for line in f
                       if re.match(r"^[A-Z_][A-Z0-9_]*=", line)}
        needed = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", self.text))
        self.assertEqual(needed, {"POSTGRES_PASSWORD", "KQE_SERVICE_PASSWORD"})
        self.assertLessEqual(needed | {"KQE_DATA_KEYS", "KQE_PSEUDONYM_KEY"}, example)
        # No secret is written into the compose file itself: URLs' passwords are
        # interpolated, and no environment entry holds a password or key of its own.
        for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", self.text):
            self.assertTrue(password.startswith("${"), password)
        for name, service in self.compose["services"].items():
            for key in service.get("environment", {}):
                self.assertNotRegex(key, "PASSWORD|KEY", (name, key))
        ignored = subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", "docker/kqe.env"])
        self.assertEqual(ignored.returncode, 0, "docker/kqe.env must be ignored by git")


class PrometheusTest(unittest.TestCase):
    """deploy/prometheus: a scrape configuration and alert rules that Prometheus' own checker
    accepts, on metrics kqe-api really exports."""
    PROMETHEUS = os.path.join(ROOT, "deploy", "prometheus")

    def promtool(self, *args):
        tool = os.environ.get("KQE_PROMTOOL", "")
        if not os.access(tool, os.X_OK):
            self.fail("promtool is missing: ./scripts/test fetches it (build/tools/promtool)")
        return subprocess.run([tool, *args], capture_output=True, text=True,
                              cwd=self.PROMETHEUS)

    def test_config_and_rules_pass_promtool(self):
        for args in (("check", "config", "prometheus.yml"), ("check", "rules", "kqe-alerts.yml")):
            r = self.promtool(*args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rules_use_metrics_kqe_exports_and_cover_what_operators_watch(self):
        exported = set()
        for top, _, names in os.walk(os.path.join(ROOT, "services", "api")):
            for n in names:
                if n.endswith(".c"):
                    with open(os.path.join(top, n), encoding="utf-8") as f:
                        text = f.read()
                    exported |= set(re.findall(r"# TYPE (kqe_[a-z_]+)", text))
                    exported |= set(re.findall(r'"(kqe_[a-z_]+)",', text))
        with open(os.path.join(self.PROMETHEUS, "kqe-alerts.yml"), encoding="utf-8") as f:
            rules = yaml.safe_load(f)["groups"][0]["rules"]
        used = {m for r in rules for m in re.findall(r"kqe_[a-z_]+", r["expr"])}
        self.assertLessEqual(used, exported)
        # Queue depth, dead letters, job age, 5xx rate: each has its alert.
        for metric in ("kqe_jobs_backlog", "kqe_jobs_dead", "kqe_http_requests_total",
                       "kqe_breaker_open", "kqe_pool_rejected_total"):
            self.assertIn(metric, used)
        self.assertTrue(any("min_over_time" in r["expr"] for r in rules))  # the job age
        for r in rules:
            self.assertIn(r["labels"]["severity"], ("page", "ticket"), r["alert"])
            self.assertTrue(r["annotations"]["summary"], r["alert"])


class KubernetesTest(unittest.TestCase):
    """deploy/k8s: each overlay rendered with `kubectl kustomize`, every object valid against
    the Kubernetes API's schemas (tools/validate-k8s.mjs, the npm package kubernetes-models,
    pinned), and what the provider asked for in it."""
    K8S = os.path.join(ROOT, "deploy", "k8s")

    def render(self, overlay):
        r = subprocess.run(["kubectl", "kustomize", os.path.join(self.K8S, "overlays", overlay)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        v = subprocess.run(["node", os.path.join(ROOT, "tools", "validate-k8s.mjs")],
                           input=json.dumps(docs), capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stderr)
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    def test_both_overlays_are_valid_and_locked_down(self):
        for overlay, namespace, replicas in (("dev", "kqe-dev", 1), ("production", "kqe", 3)):
            with self.subTest(overlay=overlay):
                objs = self.render(overlay)
                self.assertEqual({d["metadata"].get("namespace") for d in objs.values()},
                                 {namespace})
                api = objs[("Deployment", "kqe-api")]
                self.assertEqual(api["spec"]["replicas"], replicas)
                for name in ("kqe-api", "kqe-aggregator"):
                    pod = objs[("Deployment", name)]["spec"]["template"]["spec"]
                    self.assert_locked_down(pod, name)
                self.assert_locked_down(objs[("Job", "kqe-migrate")]["spec"]["template"]["spec"],
                                        "kqe-migrate")
                c = api["spec"]["template"]["spec"]["containers"][0]
                self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
                self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
                job = objs[("Job", "kqe-migrate")]["spec"]["template"]["spec"]["containers"][0]
                self.assertEqual(job["args"], ["kqe", "migrate"])
                hpa = objs[("HorizontalPodAutoscaler", "kqe-api")]["spec"]
                self.assertEqual((hpa["scaleTargetRef"]["name"], hpa["minReplicas"]),
                                 ("kqe-api", replicas if overlay == "production" else 2))
                self.assertIn(("PodDisruptionBudget", "kqe-api"), objs)
                ingress = objs[("Ingress", "kqe-api")]["spec"]
                self.assertTrue(ingress["tls"][0]["secretName"])
                only = objs[("NetworkPolicy", "kqe-api-ingress")]["spec"]
                self.assertEqual(only["podSelector"]["matchLabels"],
                                 {"app.kubernetes.io/name": "kqe-api"})
                self.assertEqual(len(only["ingress"]), 1)  # from the ingress controller only
                self.assertEqual((("Secret", "kqe") in objs), overlay == "dev")

    def assert_locked_down(self, pod, name):
        sc = pod["securityContext"]
        self.assertEqual((sc["runAsNonRoot"], sc["seccompProfile"]["type"]),
                         (True, "RuntimeDefault"), name)
        self.assertIs(pod["automountServiceAccountToken"], False, name)
        for c in pod["containers"]:
            csc = c["securityContext"]
            self.assertEqual((csc["readOnlyRootFilesystem"], csc["allowPrivilegeEscalation"],
                              csc["capabilities"]["drop"]), (True, False, ["ALL"]), name)
            self.assertTrue(c["resources"]["requests"] and c["resources"]["limits"], name)

    def test_production_runs_postgresql_with_failover_reachable_by_kqe_only(self):
        objs = self.render("production")
        db = objs[("Cluster", "kqe-db")]["spec"]
        self.assertGreaterEqual(db["instances"], 3)
        self.assertTrue(db["imageName"].endswith(":15"))
        # A synchronous replica: what a promotion must not lose is on two instances.
        self.assertGreaterEqual(db["minSyncReplicas"], 1)
        # Redis through its Sentinels, which kqe asks for the master (a failover followed).
        config = objs[("ConfigMap", "kqe")]["data"]
        self.assertRegex(config["KQE_REDIS_SENTINELS"], r"^[\w.-]+:\d+(,[\w.-]+:\d+)*$")
        self.assertTrue(config["KQE_REDIS_MASTER_NAME"])
        policy = objs[("NetworkPolicy", "kqe-db-from-kqe-only")]["spec"]
        self.assertEqual(policy["podSelector"]["matchLabels"], {"cnpg.io/cluster": "kqe-db"})
        self.assertIn({"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "kqe"}}},
                      policy["ingress"][0]["from"])
        self.assertIn(("NetworkPolicy", "kqe-redis-from-kqe-only"), objs)


if __name__ == "__main__":
    unittest.main()
