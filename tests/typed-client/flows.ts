/*
 * flows.ts — what a frontend vendor writes against kqe: openapi-fetch's createClient<paths>()
 * with the types openapi-typescript generates from proto/openapi.yaml, and no casts. Type
 * assertions, non-null assertions and the escape type are banned here (scripts/test greps
 * for them): every answer is narrowed by checks, so the types alone carry the contract.
 *
 * Two flows against a live kqe-api:
 *   office    GET /v1/me; list procedures (paged with next_cursor); dry-run a case analysis;
 *             create it with an Idempotency-Key (and replay it); read it back and PATCH it
 *             with If-Match; page the case analyses; a download link for their CSV, fetched
 *             without the token
 *   ministry  POST /v1/reports and poll the job; read the report (and its ETag, CSV);
 *             POST /v1/ministry-batches; GET /v1/report-periods; GET /v1/cycles/2023/offices
 *
 * Environment: KQE_BASE_URL (e.g. http://127.0.0.1:8080), KQE_OFFICE_TOKEN (an office_staff
 * or office_lead token of an office with an open procedure of the 2023-2028 cycle),
 * KQE_MINISTRY_TOKEN. Exits 0 when both flows went the way the contract says, 1 otherwise.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "kqe-api";

type Schemas = components["schemas"];

/* An answer of openapi-fetch: data on success, error (the problem) otherwise. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

class Unexpected extends Error {}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Unexpected(`${name} is not set`);
  }
  return value;
}

function describe(error: unknown): string {
  return JSON.stringify(error ?? null).slice(0, 500);
}

/* The body of an answer that must have this status; anything else ends the run. */
function expect<T>(what: string, answer: Answer<T>, status: number): T {
  const { data, error, response } = answer;
  if (response.status !== status || data === undefined) {
    throw new Unexpected(`${what}: expected ${status}, got ${response.status} ${describe(error)}`);
  }
  return data;
}

/* An answer that must be a problem with this status (no body is read into a type). */
function expectProblem(what: string, answer: Answer<unknown>, status: number): void {
  const { response } = answer;
  const type = response.headers.get("Content-Type") ?? "";
  if (response.status !== status || !type.startsWith("application/problem+json")) {
    throw new Unexpected(`${what}: expected a ${status} problem, got ${response.status} ${type}`);
  }
}

function header(what: string, response: Response, name: string): string {
  const value = response.headers.get(name);
  if (value === null) {
    throw new Unexpected(`${what}: no ${name} header`);
  }
  return value;
}

function check(what: string, ok: boolean, detail: unknown = null): void {
  if (!ok) {
    throw new Unexpected(`${what} ${describe(detail)}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const baseUrl = env("KQE_BASE_URL");

function client(token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

type Client = ReturnType<typeof client>;

/* ---- the office flow ---------------------------------------------------------------- */

async function openProcedure(office: Client, officeId: string): Promise<Schemas["Procedure"]> {
  // Page through the office's procedures one at a time, following next_cursor.
  let cursor: string | undefined;
  for (let page = 0; page < 50; page++) {
    const list = expect(
      "GET /v1/procedures",
      await office.GET("/v1/procedures", {
        params: { query: cursor === undefined ? { limit: 1 } : { limit: 1, cursor } },
      }),
      200,
    );
    for (const p of list.items) {
      check("a procedure of another office", p.office_id === officeId, p);
      if (p.cycle === "2023-2028" && !p.out_of_cycle && p.phase !== "completed") {
        return p;
      }
    }
    if (list.next_cursor === null) {
      break;
    }
    cursor = list.next_cursor;
  }
  throw new Unexpected("no open procedure of the 2023-2028 cycle");
}

async function officeFlow(): Promise<void> {
  const office = client(env("KQE_OFFICE_TOKEN"));

  const me = expect("GET /v1/me", await office.GET("/v1/me"), 200);
  check("an office role", me.role === "office_staff" || me.role === "office_lead", me);
  const officeId = me.office_id;
  if (officeId === null) {
    throw new Unexpected("an office role without an office");
  }
  check("may write case analyses", me.permissions.includes("cases.write"), me.permissions);

  const procedure = await openProcedure(office, officeId);

  const caseAnalysis: Schemas["CaseAnalysisCreate"] = {
    procedure_id: procedure.id,
    case_reference: `TYPED-${Date.now()}`,
    selection: "random",
    closed_month: "2022-05",
    child: { sex: "weiblich", birth_month: "2015-03" },
    parents_age_group: "27_und_aelter",
    reported_by: "schule",
    result: "latente_gefaehrdung",
    endangerment_forms: ["vernachlaessigung"],
    process: { days_to_first_contact: 2, direct_impression: true },
    ratings: { intake: 2, documentation: 3 },
    learning_themes: ["documentation"],
    findings: "Hausbesuch erst nach drei Wochen.",
  };

  // A dry run answers the record it would store (the schema of the 201) and keeps nothing.
  const dry = await office.POST("/v1/case-analyses", {
    params: { query: { dry_run: true } },
    body: caseAnalysis,
  });
  const wouldBe = expect("POST /v1/case-analyses?dry_run=true", dry, 200);
  check("dry run: the would-be record", wouldBe.version === 1 && !wouldBe.locked, wouldBe);
  check("dry run: no Location", dry.response.headers.get("Location") === null);

  const key = `typed-client-${Date.now()}`;
  const first = await office.POST("/v1/case-analyses", {
    params: { header: { "Idempotency-Key": key } },
    body: caseAnalysis,
  });
  const created = expect("POST /v1/case-analyses", first, 201);
  const location = header("POST /v1/case-analyses", first.response, "Location");
  check("Location names it", location === `/v1/case-analyses/${created.id}`, location);
  check("the dry run's id was not kept", created.id !== wouldBe.id);

  // The same request with the same key: the first answer again, nothing stored twice.
  const again = await office.POST("/v1/case-analyses", {
    params: { header: { "Idempotency-Key": key } },
    body: caseAnalysis,
  });
  const replayed = expect("POST /v1/case-analyses (replay)", again, 201);
  check("replay: the same record", replayed.id === created.id, replayed);
  check("replay: said so", again.response.headers.get("Idempotency-Replayed") === "true");

  const read = await office.GET("/v1/case-analyses/{id}", {
    params: { path: { id: created.id } },
  });
  const current = expect("GET /v1/case-analyses/{id}", read, 200);
  check("read back: its findings", current.findings === caseAnalysis.findings, current);
  const etag = header("GET /v1/case-analyses/{id}", read.response, "ETag");

  const patched = await office.PATCH("/v1/case-analyses/{id}", {
    params: { path: { id: created.id }, header: { "If-Match": etag } },
    body: { reported_by: "kita_kindertagespflege", ratings: { intake: 1, documentation: null } },
  });
  const updated = expect("PATCH /v1/case-analyses/{id}", patched, 200);
  check("patched", updated.version === 2 && updated.reported_by === "kita_kindertagespflege",
    updated);
  check("a rating removed", updated.ratings.documentation === undefined, updated.ratings);
  check("the new ETag", header("PATCH", patched.response, "ETag") === '"v2"');

  // The old ETag is stale now: 412, and nothing changes.
  expectProblem("PATCH with a stale If-Match", await office.PATCH("/v1/case-analyses/{id}", {
    params: { path: { id: created.id }, header: { "If-Match": etag } },
    body: { reported_by: "schule" },
  }), 412);

  // Page the procedure's case analyses two at a time until next_cursor is null.
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; ; page++) {
    check("paging ends", page < 200);
    const query: { procedure_id: string; limit: number; cursor?: string } = {
      procedure_id: procedure.id,
      limit: 2,
    };
    if (cursor !== null) {
      query.cursor = cursor;
    }
    const list = expect("GET /v1/case-analyses", await office.GET("/v1/case-analyses", {
      params: { query },
    }), 200);
    check("at most a page", list.items.length <= 2, list.items.length);
    seen.push(...list.items.map((c) => c.id));
    cursor = list.next_cursor;
    if (cursor === null) {
      break;
    }
  }
  check("the pages hold the new case analysis", seen.includes(created.id));
  check("no case analysis twice", new Set(seen).size === seen.length);

  // A download link: the CSV for a browser, fetched without the token.
  const href = `/v1/case-analyses.csv?procedure_id=${procedure.id}&limit=500`;
  const link = expect("POST /v1/download-links", await office.POST("/v1/download-links", {
    body: { href },
  }), 200);
  check("the link is the href, signed", link.href.startsWith(`${href}&link=`), link);
  check("expires in the future", Date.parse(link.expires_at) > Date.now() - 5000, link);
  const download = await fetch(new URL(link.href, baseUrl));
  const csv = await download.text();
  check("download: 200 text/csv", download.status === 200 &&
    (download.headers.get("Content-Type") ?? "").startsWith("text/csv"), download.status);
  check("download: its columns", csv.startsWith("id,procedure_id,office_id,case_pseudonym,"));
  check("download: the new row", csv.includes(created.id));
  const tampered = await fetch(new URL(link.href.replace("limit=500", "limit=499"), baseUrl));
  check("a changed link is refused", tampered.status === 401, tampered.status);
}

/* ---- the ministry flow -------------------------------------------------------------- */

async function waitForJob(ministry: Client, id: string): Promise<string> {
  for (let attempt = 0; attempt < 240; attempt++) {
    const job = expect("GET /v1/jobs/{id}", await ministry.GET("/v1/jobs/{id}", {
      params: { path: { id } },
    }), 200);
    if (job.status === "succeeded") {
      if (job.result === null) {
        throw new Unexpected(`job ${id} succeeded without a result`);
      }
      return job.result;
    }
    if (job.status === "dead") {
      throw new Unexpected(`job ${id} is dead: ${job.error ?? "no error"}`);
    }
    await sleep(250);
  }
  throw new Unexpected(`job ${id} did not succeed within 60 s`);
}

async function ministryFlow(): Promise<void> {
  const ministry = client(env("KQE_MINISTRY_TOKEN"));

  const me = expect("GET /v1/me", await ministry.GET("/v1/me"), 200);
  check("the ministry role", me.role === "ministry" && me.office_id === null, me);

  const queued = await ministry.POST("/v1/reports", { body: { scope: "state", period: "2022" } });
  const job = expect("POST /v1/reports", queued, 202);
  check("Location: the job", header("POST /v1/reports", queued.response, "Location") ===
    `/v1/jobs/${job.id}`);
  const result = await waitForJob(ministry, job.id);
  const reportId = /^\/v1\/reports\/([0-9a-f-]{36})$/.exec(result)?.[1];
  if (reportId === undefined) {
    throw new Unexpected(`a report job's result is no report: ${result}`);
  }

  const got = await ministry.GET("/v1/reports/{id}", { params: { path: { id: reportId } } });
  const report = expect("GET /v1/reports/{id}", got, 200);
  check("the state report", report.id === reportId && report.scope === "state" &&
    report.region === null && report.period === "2022", report.params);
  check("with tables", report.tables.length > 0);
  const etag = header("GET /v1/reports/{id}", got.response, "ETag");
  const unchanged = await ministry.GET("/v1/reports/{id}", {
    params: { path: { id: reportId }, header: { "If-None-Match": etag } },
  });
  check("If-None-Match: 304", unchanged.response.status === 304, unchanged.response.status);

  // The report in CSV: a plain string, never a union with the JSON.
  const csv = expect("GET /v1/reports/{id}.csv", await ministry.GET("/v1/reports/{id}.csv", {
    params: { path: { id: reportId } },
    parseAs: "text",
  }), 200);
  check("report CSV: its columns", csv.startsWith("table,title,dimension_1,value_1,"));

  const batch = expect("POST /v1/ministry-batches", await ministry.POST("/v1/ministry-batches", {
    body: { period: "2023-2028" },
  }), 202);
  check("a ministry batch", batch.kind === "ministry_batch", batch);
  const listing = await waitForJob(ministry, batch.id);
  check("the batch's result lists its reports", listing === `/v1/reports?job_id=${batch.id}`,
    listing);
  const reports = expect("GET /v1/reports?job_id=", await ministry.GET("/v1/reports", {
    params: { query: { job_id: batch.id } },
  }), 200);
  const regions = reports.items.map((r) => r.region ?? "state").sort();
  check("the state and both regions", regions.join(",") === "LVR,LWL,state", regions);
  check("each with its CSV", reports.items.every((r) => r.csv === `${r.href}.csv`));

  const periods = expect("GET /v1/report-periods", await ministry.GET("/v1/report-periods"), 200);
  for (const p of periods.items) {
    check("years are years", p.years.every((y) => /^\d{4}$/.test(y)), p);
  }

  const cycle = expect("GET /v1/cycles/{cycle}/offices", await ministry.GET(
    "/v1/cycles/{cycle}/offices", { params: { path: { cycle: "2023" } } }), 200);
  check("the cycle in full", cycle.cycle === "2023-2028", cycle.cycle);
  check("every office", cycle.items.length > 0, cycle.items.length);
  const open = expect("GET /v1/cycles/{cycle}/offices?status=open", await ministry.GET(
    "/v1/cycles/{cycle}/offices",
    { params: { path: { cycle: "2023-2028" }, query: { status: "open" } } }), 200);
  check("open is due and overdue", open.items.every((o) =>
    o.status === "due" || o.status === "overdue"), open.items);
}

async function main(): Promise<void> {
  for (const [name, flow] of [["office", officeFlow], ["ministry", ministryFlow]] satisfies
    [string, () => Promise<void>][]) {
    await flow();
    console.log(`typed client: ${name} flow ok`);
  }
}

main().catch((e: unknown) => {
  console.error(`typed client: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
