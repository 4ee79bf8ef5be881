"""The services besides IB: the PostgreSQL DSN when one is set (connect, server version, the legacy
bars table) and, for an ``s3://`` catalog, the S3 endpoint and credentials (one LIST of the
bucket, short timeouts, no retries). No password or key is ever shown (``redact_dsn``,
``Scrubber``)."""

from __future__ import annotations

import os

from ntrader.doctor.findings import Finding, fail, from_error, ok, warn
from ntrader.errors import CONNECTION_ERROR, INPUT_ERROR, InputError

PG_FIX = (
    "check the DSN (DATABASE_URL or make doctor DSN=…: host, port, user, password, database) and "
    "that the server is up and reachable (pg_isready -h <host> -p <port>)"
)


def postgres_findings(dsn: str, table: str, timeout: float) -> list[Finding]:
    """``postgres`` (connect, server version) and ``postgres.table`` (the legacy table)."""
    import psycopg

    from ntrader.legacy_pg.dsn import Scrubber, normalize_dsn, parse_dsn, redact_dsn

    shown = redact_dsn(dsn)
    try:
        parse_dsn(dsn)
    except InputError as exc:
        return [from_error("postgres", exc)]
    scrub = Scrubber(dsn)
    try:
        with psycopg.connect(
            normalize_dsn(dsn), autocommit=True, connect_timeout=max(1, round(timeout))
        ) as conn:
            number = conn.info.server_version  # e.g. 180001 = 18.1
            database = conn.info.dbname
            cur = conn.execute(
                "SELECT to_regclass(%s)::text, "
                "(SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s))",
                [table, table],
            )
            found, estimate = cur.fetchone() or (None, None)
    except psycopg.Error as exc:
        lines = scrub(exc).strip().splitlines() or [type(exc).__name__]
        why = " / ".join(s.strip() for s in lines[:2])
        return [fail("postgres", f"cannot connect to {shown}: {why}", PG_FIX, CONNECTION_ERROR)]
    version = f"{number // 10000}.{number % 10000}"
    rows = [ok("postgres", f"PostgreSQL {version} at {shown} (database {database})")]
    if found is None:
        rows.append(
            warn(
                "postgres.table",
                f"no table {table} in database {database}: make migrate would find nothing",
                "migrate reads source.table (ARGS=source.table=schema.table); or unset "
                "DATABASE_URL if this is not the legacy database",
            )
        )
    else:
        size = "never analysed" if estimate is None or estimate < 0 else f"~{estimate:,} rows"
        rows.append(ok("postgres.table", f"{found}: {size} (planner estimate)"))
    return rows


def s3_endpoint(url: str, timeout: float) -> Finding:
    """One LIST of the catalog's bucket with the standard AWS settings (``s3_options``)."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from ntrader.catalog.s3store import s3_options

    bucket, _, prefix = url.removeprefix("s3://").strip("/").partition("/")
    options = s3_options()["python"]
    kwargs = options["client_kwargs"]
    endpoint = kwargs.get("endpoint_url") or f"AWS S3 ({kwargs['region_name']})"
    session = botocore.session.Session(profile=os.environ.get("AWS_PROFILE") or None)
    client = session.create_client(
        "s3",
        region_name=kwargs["region_name"],
        endpoint_url=kwargs.get("endpoint_url"),
        aws_access_key_id=options.get("key"),
        aws_secret_access_key=options.get("secret"),
        aws_session_token=options.get("token"),
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    keys = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket policy"
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
    except NoCredentialsError:
        return fail("s3", f"no AWS credentials for {url}", keys, INPUT_ERROR)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        if code == "NoSuchBucket":
            fix = f"create it (aws s3 mb s3://{bucket}) or correct CATALOG"
            return fail("s3", f"bucket {bucket} does not exist at {endpoint}", fix, INPUT_ERROR)
        detail = f"{endpoint} refused listing bucket {bucket}: {code}"
        return fail("s3", detail, keys, CONNECTION_ERROR)
    except (BotoCoreError, OSError) as exc:
        fix = "check AWS_ENDPOINT_URL (S3-compatible servers), the network and the region"
        return fail("s3", f"cannot reach {endpoint}: {exc}", fix, CONNECTION_ERROR)
    creds = session.get_credentials()
    source = getattr(creds, "method", None) or "the environment"
    return ok("s3", f"{endpoint}: bucket {bucket} listed (credentials from {source})")
