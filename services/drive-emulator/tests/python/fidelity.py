"""Fidelity check: Google's own google-api-python-client, unmodified, against the Drive emulator.

Usage: fidelity.py BASE_URL [EMAIL]

Runs the calls Ferry depends on and the errors it handles, through the library exactly as an
application would, with the bundled Drive v3 discovery document pointed at the emulator (no network).
Exits 0 when every check passes; prints each step so a failure shows where it happened.
"""

import hashlib
import io
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload

CLIENT_ID = "ferry-dev-client"
CLIENT_SECRET = "ferry-dev-secret"
REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPE = "https://www.googleapis.com/auth/drive"
FOLDER = "application/vnd.google-apps.folder"
DOC = "application/vnd.google-apps.document"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CHUNK = 256 * 1024

STARTED = time.monotonic()


def step(name):
    print(f"[{time.monotonic() - STARTED:6.2f}s] {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def authorize(base, email):
    """The browser half of the web-server flow, by hand: authorize (auto-approved) and read the code."""
    query = urllib.parse.urlencode(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": SCOPE,
            "access_type": "offline",
            "state": "fidelity",
            "login_hint": email,
        }
    )
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{base}/o/oauth2/v2/auth?{query}")
        raise AssertionError("authorize did not redirect")
    except urllib.error.HTTPError as e:
        check(e.code == 302, f"authorize answered {e.code}")
        location = e.headers["Location"]
    params = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    check(params.get("state") == ["fidelity"], f"state echoed: {location}")
    form = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ).encode()
    with urllib.request.urlopen(f"{base}/token", data=form) as res:
        tokens = json.load(res)
    check("refresh_token" in tokens, f"offline access gives a refresh token: {tokens}")
    return tokens["refresh_token"]


def expire_access_tokens(base):
    req = urllib.request.Request(f"{base}/__emulator/tokens/expire", data=b"", method="POST")
    urllib.request.urlopen(req).read()


def set_faults(base, patch):
    req = urllib.request.Request(
        f"{base}/__emulator/faults",
        data=json.dumps(patch).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req).read()


def error_reason(err):
    body = json.loads(err.content)
    return err.resp.status, body["error"]["errors"][0]["reason"]


def expect_error(call, status, reason, what):
    try:
        call.execute()
    except HttpError as e:
        got = error_reason(e)
        check(got == (status, reason), f"{what}: expected {status} {reason}, got {got}")
        check(e.status_code == status, f"{what}: HttpError.status_code {e.status_code}")
        return
    raise AssertionError(f"{what}: expected HttpError {status} {reason}, the call succeeded")


def main():
    base = sys.argv[1].rstrip("/")
    email = sys.argv[2] if len(sys.argv) > 2 else "python@ferry.test"

    step("authorize and exchange the code (refresh token only)")
    refresh_token = authorize(base, email)
    # No access token: google-auth refreshes through the emulator's token endpoint before the first call.
    creds = Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=f"{base}/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=[SCOPE],
    )

    step("build the client from the bundled discovery document")
    doc = json.loads(get_static_doc("drive", "v3"))
    doc["rootUrl"] = f"{base}/"
    doc["baseUrl"] = f"{base}/drive/v3/"
    doc["mtlsRootUrl"] = f"{base}/"
    drive = build_from_document(doc, credentials=creds)

    step("about.get")
    about = drive.about().get(fields="user(emailAddress,displayName),storageQuota").execute()
    check(about["user"]["emailAddress"] == email, f"about.user: {about}")
    check(isinstance(about["storageQuota"]["limit"], str), f"int64 as string: {about}")
    check(creds.token and creds.valid, "credentials were refreshed")

    step("folder create")
    folder = drive.files().create(body={"name": "Fidelity", "mimeType": FOLDER}, fields="id,name,mimeType").execute()
    check(folder["mimeType"] == FOLDER, f"folder: {folder}")
    fid = folder["id"]

    step("multipart upload")
    small = b"hello from google-api-python-client\n" * 100
    media = MediaIoBaseUpload(io.BytesIO(small), mimetype="text/plain", resumable=False)
    up = (
        drive.files()
        .create(body={"name": "small.txt", "parents": [fid]}, media_body=media, fields="id,size,md5Checksum,parents")
        .execute()
    )
    check(up["md5Checksum"] == hashlib.md5(small).hexdigest(), f"multipart md5: {up}")
    check(up["size"] == str(len(small)) and up["parents"] == [fid], f"multipart size/parents: {up}")
    small_id = up["id"]

    step("chunked resumable upload (256 KiB chunks)")
    big = bytes((i * 31 + 7) % 251 for i in range(3 * CHUNK + 12345))
    media = MediaIoBaseUpload(io.BytesIO(big), mimetype="application/octet-stream", chunksize=CHUNK, resumable=True)
    request = drive.files().create(
        body={"name": "big.bin", "parents": [fid]}, media_body=media, fields="id,size,md5Checksum,sha256Checksum"
    )
    response = None
    progress = []
    while response is None:
        status, response = request.next_chunk()
        if status is not None:
            progress.append(status.resumable_progress)
    check(progress == [CHUNK, 2 * CHUNK, 3 * CHUNK], f"progress from 308 Range headers: {progress}")
    check(response["size"] == str(len(big)), f"resumable size: {response}")
    check(response["md5Checksum"] == hashlib.md5(big).hexdigest(), f"resumable md5: {response}")
    check(response["sha256Checksum"] == hashlib.sha256(big).hexdigest(), f"resumable sha256: {response}")
    big_id = response["id"]

    step("files.list with paging")
    for i in range(5):
        drive.files().create(body={"name": f"page-{i}.txt", "parents": [fid], "mimeType": "text/plain"}).execute()
    names = []
    pages = 0
    request = drive.files().list(
        q=f"'{fid}' in parents and trashed = false",
        pageSize=3,
        orderBy="name",
        fields="nextPageToken,files(id,name)",
    )
    while request is not None:
        result = request.execute()
        pages += 1
        names.extend(f["name"] for f in result["files"])
        request = drive.files().list_next(request, result)
    want = sorted(["small.txt", "big.bin"] + [f"page-{i}.txt" for i in range(5)], key=str.lower)
    check(names == want, f"listed {names}, want {want}")
    check(pages == 3, f"7 files at 3 a page: {pages} pages")

    step("MediaIoBaseDownload in ranged chunks")
    out = io.BytesIO()
    downloader = MediaIoBaseDownload(out, drive.files().get_media(fileId=big_id), chunksize=CHUNK)
    done = False
    chunks = 0
    while not done:
        status, done = downloader.next_chunk()
        chunks += 1
    check(out.getvalue() == big, "downloaded bytes equal the uploaded ones")
    check(chunks == 4, f"{len(big)} bytes in {CHUNK}-byte ranges: {chunks} requests")

    step("an expired access token is refreshed through /token and the call repeated")
    expire_access_tokens(base)
    got = drive.files().get(fileId=small_id, fields="id,name").execute()
    check(got["name"] == "small.txt", f"after refresh: {got}")

    step("export of a converted Doc to text and docx")
    text = "Fidelity notes\nSecond line of the document.\n"
    media = MediaIoBaseUpload(io.BytesIO(text.encode()), mimetype="text/plain", resumable=False)
    converted = (
        drive.files().create(body={"name": "Notes", "mimeType": DOC}, media_body=media, fields="id,mimeType").execute()
    )
    check(converted["mimeType"] == DOC, f"converted: {converted}")
    exported = drive.files().export(fileId=converted["id"], mimeType="text/plain").execute()
    check(b"Second line of the document." in exported, f"export text: {exported[:200]!r}")
    docx = drive.files().export(fileId=converted["id"], mimeType=DOCX).execute()
    check(docx[:2] == b"PK", f"a docx is a zip: {docx[:16]!r}")
    import zipfile

    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        xml = z.read("word/document.xml").decode()
    check("Second line of the document." in xml, "docx document.xml carries the text")

    step("documented errors: 404 notFound, 403 fileNotDownloadable / fileNotExportable, 400 badRequest")
    expect_error(drive.files().get(fileId="1doesNotExist0000000000000"), 404, "notFound", "files.get unknown id")
    expect_error(drive.files().get_media(fileId=converted["id"]), 403, "fileNotDownloadable", "get_media on a Doc")
    expect_error(
        drive.files().export(fileId=small_id, mimeType="text/plain"), 403, "fileNotExportable", "export a binary file"
    )
    expect_error(
        drive.files().export(fileId=converted["id"], mimeType="image/png"), 400, "badRequest", "unsupported export"
    )
    expect_error(drive.files().list(q="name = "), 400, "invalid", "unparseable q")

    step("changes.list after an update")
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    drive.files().update(fileId=small_id, body={"name": "renamed.txt"}).execute()
    changes = drive.changes().list(pageToken=start, fields="newStartPageToken,changes(fileId,removed,file(name))").execute()
    mine = [c for c in changes["changes"] if c["fileId"] == small_id]
    check(mine and mine[0]["file"]["name"] == "renamed.txt" and not mine[0]["removed"], f"changes: {changes}")
    check("newStartPageToken" in changes, f"last page has newStartPageToken: {changes}")

    step("files.update with new content (resumable, on the update path)")
    newer = bytes(reversed(big))
    media = MediaIoBaseUpload(io.BytesIO(newer), mimetype="application/octet-stream", chunksize=CHUNK, resumable=True)
    request = drive.files().update(fileId=big_id, media_body=media, fields="id,md5Checksum,version")
    response = None
    while response is None:
        _, response = request.next_chunk()
    check(response["md5Checksum"] == hashlib.md5(newer).hexdigest(), f"update md5: {response}")

    step("shared drives: drives.create, drives.list, files.list corpora=drive")
    team = drive.drives().create(requestId="fidelity-1", body={"name": "Fidelity Team"}).execute()
    listed = drive.drives().list(pageSize=10).execute()
    check(any(d["id"] == team["id"] for d in listed["drives"]), f"drives.list: {listed}")
    inside = drive.files().create(
        body={"name": "in-team.txt", "mimeType": "text/plain", "parents": [team["id"]]},
        supportsAllDrives=True,
        fields="id,driveId",
    ).execute()
    check(inside["driveId"] == team["id"], f"created in the shared drive: {inside}")
    in_drive = drive.files().list(
        corpora="drive", driveId=team["id"], includeItemsFromAllDrives=True, supportsAllDrives=True, fields="files(id)"
    ).execute()
    check([f["id"] for f in in_drive["files"]] == [inside["id"]], f"corpora=drive: {in_drive}")
    expect_error(drive.files().get(fileId=inside["id"]), 404, "notFound", "shared-drive item without supportsAllDrives")

    step("injected faults: HttpError 429 rateLimitExceeded; execute(num_retries) rides out a 403 userRateLimitExceeded")
    set_faults(base, {"error_rates": {"rate_limit_429": 1.0}, "error_count": 1, "endpoints": ["about.get"]})
    expect_error(drive.about().get(fields="user"), 429, "rateLimitExceeded", "injected 429")
    set_faults(base, {"error_rates": {"rate_limit_429": None, "user_rate_limit_403": 1.0}, "error_count": 1})
    about = drive.about().get(fields="user(emailAddress)").execute(num_retries=2)
    check(about["user"]["emailAddress"] == email, f"retried about.get: {about}")
    set_faults(base, {"error_rates": None, "error_count": None, "endpoints": None})

    step("delete, then 404")
    drive.files().delete(fileId=small_id).execute()
    expect_error(drive.files().get(fileId=small_id), 404, "notFound", "files.get after delete")

    step("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
