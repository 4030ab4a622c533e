// Validates Kubernetes manifests against the API's schemas (the npm packages kubernetes-models
// and @kubernetes-models/cloudnative-pg, pinned in package.json): a JSON array of objects on
// stdin, as tests/integration/test_deploy.py renders them with `kubectl kustomize`. Prints
// one line per invalid object and exits 1 if any is.
import { readFileSync } from "node:fs";

const docs = JSON.parse(readFileSync(0, "utf8"));
const packages = { "postgresql.cnpg.io": "@kubernetes-models/cloudnative-pg" };
let bad = 0;
for (const doc of docs) {
  const name = `${doc.kind}/${doc.metadata?.name}`;
  const [group, version] = doc.apiVersion.includes("/")
    ? doc.apiVersion.split("/")
    : [null, doc.apiVersion];
  const pkg = packages[group] ?? "kubernetes-models";
  const path = group ? `${pkg}/${group}/${version}/${doc.kind}` : `${pkg}/${version}/${doc.kind}`;
  let Model;
  try {
    Model = (await import(path))[doc.kind];
  } catch {
    console.error(`${name}: no schema for ${doc.apiVersion} ${doc.kind}`);
    bad++;
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    console.error(`${name}: ${e.message}`);
    bad++;
  }
}
if (bad > 0) process.exit(1);
console.log(`${docs.length} objects valid`);
