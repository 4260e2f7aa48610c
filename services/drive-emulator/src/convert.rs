//! Google Workspace files: conversion on upload and real documents on export.
//!
//! A Workspace file keeps a plain model as its content: a Doc is UTF-8 text (one paragraph per line),
//! a Sheet is CSV (its first sheet), a Slides deck is text with slides separated by a blank line (the
//! first line of a slide is its title). Uploads with a Workspace `mimeType` convert text, HTML, CSV/TSV
//! and Office (docx, xlsx, pptx) or OpenDocument text into that model; exports render it as a real file
//! of the requested type (docx/xlsx/pptx are valid OOXML zips, PDF a valid PDF, and so on).

use std::io::{Cursor, Read, Write};

use crate::state::GOOGLE_APPS_PREFIX;

pub const DOCUMENT: &str = "application/vnd.google-apps.document";
pub const SPREADSHEET: &str = "application/vnd.google-apps.spreadsheet";
pub const PRESENTATION: &str = "application/vnd.google-apps.presentation";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODT: &str = "application/vnd.oasis.opendocument.text";
const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";
const ODS_X: &str = "application/x-vnd.oasis.opendocument.spreadsheet";
const ODP: &str = "application/vnd.oasis.opendocument.presentation";
const PDF: &str = "application/pdf";
const ZIP: &str = "application/zip";
const EPUB: &str = "application/epub+zip";

/// The export targets Drive offers for a Workspace type (empty: not exportable).
pub fn export_formats(mime: &str) -> &'static [&'static str] {
    match mime.strip_prefix(GOOGLE_APPS_PREFIX) {
        Some("document") => &[DOCX, ODT, "application/rtf", PDF, "text/plain", "text/html", ZIP, EPUB, "text/markdown"],
        Some("spreadsheet") => &[XLSX, ODS_X, ODS, PDF, ZIP, "text/csv", "text/tab-separated-values"],
        Some("presentation") => &[PPTX, ODP, PDF, "text/plain", "image/jpeg", "image/png", "image/svg+xml"],
        Some("drawing") => &[PDF, "image/jpeg", "image/png", "image/svg+xml"],
        Some("script") => &["application/vnd.google-apps.script+json"],
        _ => &[],
    }
}

/// about.exportFormats: every Workspace type and what it exports to.
pub fn all_export_formats() -> serde_json::Value {
    let kinds = ["document", "spreadsheet", "presentation", "drawing", "script"];
    kinds
        .iter()
        .map(|k| {
            let mime = format!("{GOOGLE_APPS_PREFIX}{k}");
            let targets = export_formats(&mime).iter().map(|t| serde_json::Value::from(*t)).collect();
            (mime, serde_json::Value::Array(targets))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// about.importFormats: what an upload with a Workspace mimeType converts from.
pub fn import_formats() -> serde_json::Value {
    serde_json::json!({
        "text/plain": [DOCUMENT, PRESENTATION],
        "text/markdown": [DOCUMENT],
        "text/html": [DOCUMENT],
        "application/rtf": [DOCUMENT],
        (DOCX): [DOCUMENT],
        (ODT): [DOCUMENT],
        "text/csv": [SPREADSHEET],
        "text/tab-separated-values": [SPREADSHEET],
        (XLSX): [SPREADSHEET],
        (PPTX): [PRESENTATION],
    })
}

/// A short name for a target, used in export links (`exportFormat=docx`).
pub fn format_name(mime: &str) -> &str {
    match mime {
        DOCX => "docx",
        XLSX => "xlsx",
        PPTX => "pptx",
        ODT => "odt",
        ODS | ODS_X => "ods",
        ODP => "odp",
        PDF => "pdf",
        ZIP => "zip",
        EPUB => "epub",
        "application/rtf" => "rtf",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "image/jpeg" => "jpeg",
        "image/png" => "png",
        "image/svg+xml" => "svg",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------------
// Import (upload with a Workspace mimeType)
// ---------------------------------------------------------------------------------------------------

/// Converts uploaded bytes of type `source` into the model of Workspace type `target`.
pub fn import(target: &str, source: Option<&str>, content: &[u8]) -> Vec<u8> {
    let source = source.unwrap_or("").to_ascii_lowercase();
    let text = || String::from_utf8_lossy(content).into_owned();
    let out = match target {
        DOCUMENT => match source.as_str() {
            "text/html" => html_to_text(&text()),
            DOCX => docx_text(content).unwrap_or_else(text),
            ODT => odt_text(content).unwrap_or_else(text),
            "application/rtf" | "text/rtf" => rtf_to_text(&text()),
            _ => text(),
        },
        SPREADSHEET => match source.as_str() {
            "text/tab-separated-values" => {
                rows_to_csv(&text().lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect::<Vec<_>>())
            }
            XLSX => xlsx_csv(content).unwrap_or_else(text),
            _ => text(),
        },
        PRESENTATION => match source.as_str() {
            PPTX => pptx_text(content).unwrap_or_else(text),
            _ => text(),
        },
        _ => return content.to_vec(),
    };
    out.into_bytes()
}

fn unzip(content: &[u8]) -> Option<zip::ZipArchive<Cursor<&[u8]>>> {
    zip::ZipArchive::new(Cursor::new(content)).ok()
}

fn read_entry(archive: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Option<String> {
    let mut file = archive.by_name(name).ok()?;
    let mut out = String::new();
    file.read_to_string(&mut out).ok()?;
    Some(out)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open { name: String, attrs: String, empty: bool },
    Close(String),
    Text(String),
}

/// A forgiving XML tokenizer: enough to pull text out of Office and OpenDocument parts.
fn tokens(xml: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut rest = xml;
    while !rest.is_empty() {
        match rest.find('<') {
            Some(0) => {
                let Some(end) = rest.find('>') else { break };
                let inner = &rest[1..end];
                rest = &rest[end + 1..];
                if inner.starts_with('?') || inner.starts_with('!') {
                    continue;
                }
                if let Some(name) = inner.strip_prefix('/') {
                    out.push(Tok::Close(name.trim().to_owned()));
                } else {
                    let empty = inner.ends_with('/');
                    let inner = inner.trim_end_matches('/');
                    let (name, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
                    out.push(Tok::Open { name: name.to_owned(), attrs: attrs.to_owned(), empty });
                }
            }
            Some(i) => {
                out.push(Tok::Text(unescape(&rest[..i])));
                rest = &rest[i..];
            }
            None => {
                out.push(Tok::Text(unescape(rest)));
                break;
            }
        }
    }
    out
}

fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = attrs.find(&key)? + key.len();
    let end = attrs[start..].find('"')? + start;
    Some(&attrs[start..end])
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e < 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&rest[..=end]),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Text inside `text_tag` elements, a line break at the end of each `para_tag`.
fn paragraphs(xml: &str, para_tag: &str, text_tag: Option<&str>) -> Vec<String> {
    let mut paras = Vec::new();
    let mut current = String::new();
    let mut depth_in_text = 0usize;
    let mut in_para = false;
    for tok in tokens(xml) {
        match tok {
            Tok::Open { name, empty, .. } => {
                if name == para_tag && !empty {
                    in_para = true;
                } else if name == para_tag {
                    paras.push(String::new());
                } else if Some(name.as_str()) == text_tag && !empty {
                    depth_in_text += 1;
                } else if in_para && (name.ends_with(":tab") || name == "tab") {
                    current.push('\t');
                } else if in_para && (name.ends_with(":br") || name.ends_with(":line-break")) {
                    current.push('\n');
                }
            }
            Tok::Close(name) => {
                if name == para_tag {
                    paras.push(std::mem::take(&mut current));
                    in_para = false;
                } else if Some(name.as_str()) == text_tag {
                    depth_in_text = depth_in_text.saturating_sub(1);
                }
            }
            Tok::Text(t) => {
                if in_para && (text_tag.is_none() || depth_in_text > 0) {
                    current.push_str(&t);
                }
            }
        }
    }
    paras
}

fn docx_text(content: &[u8]) -> Option<String> {
    let xml = read_entry(&mut unzip(content)?, "word/document.xml")?;
    Some(paragraphs(&xml, "w:p", Some("w:t")).join("\n"))
}

fn odt_text(content: &[u8]) -> Option<String> {
    let xml = read_entry(&mut unzip(content)?, "content.xml")?;
    let xml = xml.replace("<text:h", "<text:p").replace("</text:h>", "</text:p>");
    Some(paragraphs(&xml, "text:p", None).join("\n"))
}

fn pptx_text(content: &[u8]) -> Option<String> {
    let mut archive = unzip(content)?;
    let mut slides: Vec<(u32, String)> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter_map(|n| {
            let num = n.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()?;
            Some((num, n.into_owned()))
        })
        .collect();
    slides.sort();
    let mut out = Vec::new();
    for (_, name) in slides {
        let xml = read_entry(&mut archive, &name)?;
        let lines: Vec<String> = paragraphs(&xml, "a:p", Some("a:t")).into_iter().filter(|l| !l.is_empty()).collect();
        out.push(lines.join("\n"));
    }
    Some(out.join("\n\n"))
}

fn column_index(cell_ref: &str) -> Option<usize> {
    let letters: String = cell_ref.chars().take_while(char::is_ascii_alphabetic).collect();
    if letters.is_empty() {
        return None;
    }
    Some(letters.bytes().fold(0usize, |acc, b| acc * 26 + (b.to_ascii_uppercase() - b'A' + 1) as usize) - 1)
}

fn xlsx_csv(content: &[u8]) -> Option<String> {
    let mut archive = unzip(content)?;
    let shared: Vec<String> = read_entry(&mut archive, "xl/sharedStrings.xml")
        .map(|xml| {
            let mut out = Vec::new();
            let mut current: Option<String> = None;
            let mut in_t = false;
            for tok in tokens(&xml) {
                match tok {
                    Tok::Open { name, empty, .. } if name == "si" && !empty => current = Some(String::new()),
                    Tok::Open { name, empty, .. } if name == "t" && !empty => in_t = true,
                    Tok::Close(name) if name == "t" => in_t = false,
                    Tok::Close(name) if name == "si" => out.push(current.take().unwrap_or_default()),
                    Tok::Text(t) if in_t => {
                        if let Some(c) = current.as_mut() {
                            c.push_str(&t);
                        }
                    }
                    _ => {}
                }
            }
            out
        })
        .unwrap_or_default();
    let sheet = read_entry(&mut archive, "xl/worksheets/sheet1.xml")?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cell: Option<(usize, String, String)> = None; // (column, type, value)
    let mut in_value = false;
    for tok in tokens(&sheet) {
        match tok {
            Tok::Open { name, empty, .. } if name == "row" && !empty => rows.push(Vec::new()),
            Tok::Open { name, attrs, empty } if name == "c" => {
                let col = attr(&attrs, "r").and_then(column_index).unwrap_or_else(|| rows.last().map_or(0, Vec::len));
                let kind = attr(&attrs, "t").unwrap_or("n").to_owned();
                if empty {
                    continue;
                }
                cell = Some((col, kind, String::new()));
            }
            Tok::Open { name, empty, .. } if (name == "v" || name == "t") && !empty => in_value = true,
            Tok::Close(name) if name == "v" || name == "t" => in_value = false,
            Tok::Text(t) if in_value => {
                if let Some((_, _, v)) = cell.as_mut() {
                    v.push_str(&t);
                }
            }
            Tok::Close(name) if name == "c" => {
                if let (Some((col, kind, value)), Some(row)) = (cell.take(), rows.last_mut()) {
                    let value = if kind == "s" {
                        value.trim().parse::<usize>().ok().and_then(|i| shared.get(i).cloned()).unwrap_or_default()
                    } else {
                        value
                    };
                    if row.len() <= col {
                        row.resize(col + 1, String::new());
                    }
                    row[col] = value;
                }
            }
            _ => {}
        }
    }
    Some(rows_to_csv(&rows))
}

fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut skip = 0usize;
    for tok in tokens(html) {
        match tok {
            Tok::Open { name, empty, .. } => {
                let n = name.to_ascii_lowercase();
                if (n == "script" || n == "style" || n == "head") && !empty {
                    skip += 1;
                } else if n == "br" {
                    out.push('\n');
                }
            }
            Tok::Close(name) => {
                let n = name.to_ascii_lowercase();
                if n == "script" || n == "style" || n == "head" {
                    skip = skip.saturating_sub(1);
                } else if matches!(n.as_str(), "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
                    && !out.ends_with('\n')
                {
                    out.push('\n');
                }
            }
            Tok::Text(t) if skip == 0 => out.push_str(t.trim_matches(['\n', '\r'])),
            Tok::Text(_) => {}
        }
    }
    out.trim_end_matches('\n').to_owned()
}

fn rtf_to_text(rtf: &str) -> String {
    let mut out = String::new();
    let mut chars = rtf.chars().peekable();
    let mut depth = 0i32;
    let mut skip_depth: Option<i32> = None;
    while let Some(c) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' => {
                if skip_depth == Some(depth) {
                    skip_depth = None;
                }
                depth -= 1;
            }
            '\\' => {
                let mut word = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphabetic() {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if word.is_empty() {
                    if let Some(n) = chars.next()
                        && skip_depth.is_none()
                        && matches!(n, '\\' | '{' | '}')
                    {
                        out.push(n);
                    }
                    continue;
                }
                while chars.peek().is_some_and(|n| n.is_ascii_digit() || *n == '-') {
                    chars.next();
                }
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
                if matches!(word.as_str(), "fonttbl" | "colortbl" | "stylesheet" | "info") {
                    skip_depth = Some(depth);
                } else if (word == "par" || word == "line") && skip_depth.is_none() {
                    out.push('\n');
                }
            }
            '\r' | '\n' => {}
            c if skip_depth.is_none() && depth > 0 => out.push(c),
            _ => {}
        }
    }
    out.trim_end_matches('\n').to_owned()
}

// ---------------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------------

/// Why an export cannot be produced.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the requested conversion is not supported")]
    Unsupported,
    #[error("building the document: {0}")]
    Build(String),
}

impl From<zip::result::ZipError> for ExportError {
    fn from(e: zip::result::ZipError) -> Self {
        Self::Build(e.to_string())
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        Self::Build(e.to_string())
    }
}

/// Renders a Workspace file (`mime`, its model `content`, its `name`) as `target`.
pub fn export(mime: &str, name: &str, content: &[u8], target: &str) -> Result<Vec<u8>, ExportError> {
    if !export_formats(mime).contains(&target) {
        return Err(ExportError::Unsupported);
    }
    let text = String::from_utf8_lossy(content).into_owned();
    let lines: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split('\n').collect() };
    match mime {
        DOCUMENT => match target {
            "text/plain" | "text/markdown" => Ok(text.into_bytes()),
            "text/html" => Ok(html_document(name, &lines).into_bytes()),
            DOCX => docx(&lines),
            ODT => odt(&lines),
            "application/rtf" => Ok(rtf(&lines).into_bytes()),
            PDF => Ok(pdf(&lines)),
            ZIP => zip_entries(&[(&format!("{}.html", safe_name(name)), html_document(name, &lines).into_bytes())]),
            EPUB => epub(name, &lines),
            _ => Err(ExportError::Unsupported),
        },
        SPREADSHEET => {
            let rows = parse_csv(&text);
            match target {
                "text/csv" => Ok(rows_to_csv(&rows).into_bytes()),
                "text/tab-separated-values" => {
                    Ok(rows.iter().map(|r| r.join("\t")).collect::<Vec<_>>().join("\n").into_bytes())
                }
                XLSX => xlsx(&rows),
                ODS | ODS_X => ods(&rows),
                PDF => {
                    let lines: Vec<String> = rows.iter().map(|r| r.join("  ")).collect();
                    Ok(pdf(&lines.iter().map(String::as_str).collect::<Vec<_>>()))
                }
                ZIP => zip_entries(&[("Sheet1.html", html_table(&rows).into_bytes())]),
                _ => Err(ExportError::Unsupported),
            }
        }
        PRESENTATION => {
            let slides = slides(&text);
            match target {
                "text/plain" => Ok(text.into_bytes()),
                PPTX => pptx(&slides),
                ODP => odp(&slides),
                PDF => Ok(pdf(&lines)),
                "image/svg+xml" => Ok(svg(slides.first().map(Vec::as_slice).unwrap_or_default()).into_bytes()),
                "image/png" => Ok(png_blank(320, 180)),
                "image/jpeg" => Ok(jpeg_gray(320, 176)),
                _ => Err(ExportError::Unsupported),
            }
        }
        m if m == format!("{GOOGLE_APPS_PREFIX}drawing") => match target {
            "image/svg+xml" => Ok(svg(&lines).into_bytes()),
            "image/png" => Ok(png_blank(320, 180)),
            "image/jpeg" => Ok(jpeg_gray(320, 176)),
            PDF => Ok(pdf(&lines)),
            _ => Err(ExportError::Unsupported),
        },
        _ => {
            // Apps Script: the project as JSON.
            let body = serde_json::json!({"files": [{"name": "Code", "type": "server_js", "source": text}]});
            Ok(body.to_string().into_bytes())
        }
    }
}

fn safe_name(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_alphanumeric() || c == ' ' || c == '-' { c } else { '_' }).collect();
    if s.trim().is_empty() { "document".to_owned() } else { s }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

fn slides(text: &str) -> Vec<Vec<&str>> {
    text.split("\n\n")
        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// RFC 4180 parsing (quotes, doubled quotes, CRLF or LF).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            c => field.push(c),
        }
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    rows
}

pub fn rows_to_csv(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let cells: Vec<String> =
            row.iter()
                .map(|c| {
                    if c.contains([',', '"', '\n', '\r']) {
                        format!("\"{}\"", c.replace('"', "\"\""))
                    } else {
                        c.clone()
                    }
                })
                .collect();
        out.push_str(&cells.join(","));
    }
    out
}

fn html_document(title: &str, lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("<p>{}</p>", esc(l))).collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>",
        esc(title)
    )
}

fn html_table(rows: &[Vec<String>]) -> String {
    let body: String = rows
        .iter()
        .map(|r| format!("<tr>{}</tr>", r.iter().map(|c| format!("<td>{}</td>", esc(c))).collect::<String>()))
        .collect();
    format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body><table>{body}</table></body></html>")
}

/// A zip of `entries`; an entry named `mimetype` is stored (OpenDocument and EPUB need it first, uncompressed).
fn zip_entries<S: AsRef<str>>(entries: &[(S, Vec<u8>)]) -> Result<Vec<u8>, ExportError> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let name = name.as_ref();
        let method = if name == "mimetype" { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
        w.start_file(name, zip::write::SimpleFileOptions::default().compression_method(method))?;
        w.write_all(data)?;
    }
    Ok(w.finish()?.into_inner())
}

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
const REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const OFFICE_DOC_REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument";

fn content_types(overrides: &[(String, &str)]) -> Vec<u8> {
    let o: String =
        overrides.iter().map(|(part, ct)| format!(r#"<Override PartName="{part}" ContentType="{ct}"/>"#)).collect();
    format!(
        r#"{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>{o}</Types>"#
    )
    .into_bytes()
}

fn rels(items: &[(&str, &str, String)]) -> Vec<u8> {
    let r: String = items
        .iter()
        .map(|(id, kind, target)| format!(r#"<Relationship Id="{id}" Type="{kind}" Target="{target}"/>"#))
        .collect();
    format!(r#"{XML_HEAD}<Relationships xmlns="{REL_NS}">{r}</Relationships>"#).into_bytes()
}

fn docx(lines: &[&str]) -> Result<Vec<u8>, ExportError> {
    let paras: String =
        lines.iter().map(|l| format!(r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#, esc(l))).collect();
    let document = format!(
        r#"{XML_HEAD}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{paras}<w:sectPr><w:pgSz w:w="12240" w:h="15840"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="720" w:footer="720" w:gutter="0"/></w:sectPr></w:body></w:document>"#
    );
    zip_entries(&[
        (
            "[Content_Types].xml",
            content_types(&[(
                "/word/document.xml".to_owned(),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            )]),
        ),
        ("_rels/.rels", rels(&[("rId1", OFFICE_DOC_REL, "word/document.xml".to_owned())])),
        ("word/document.xml", document.into_bytes()),
    ])
}

fn column_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn xlsx(rows: &[Vec<String>]) -> Result<Vec<u8>, ExportError> {
    let mut data = String::new();
    for (r, row) in rows.iter().enumerate() {
        data.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, value) in row.iter().enumerate() {
            let cell = format!("{}{}", column_name(c), r + 1);
            if !value.is_empty() && value.parse::<f64>().is_ok_and(f64::is_finite) {
                data.push_str(&format!(r#"<c r="{cell}"><v>{}</v></c>"#, esc(value.trim())));
            } else if !value.is_empty() {
                data.push_str(&format!(
                    r#"<c r="{cell}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                    esc(value)
                ));
            }
        }
        data.push_str("</row>");
    }
    let main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    let sheet = format!(r#"{XML_HEAD}<worksheet xmlns="{main}"><sheetData>{data}</sheetData></worksheet>"#);
    let workbook = format!(
        r#"{XML_HEAD}<workbook xmlns="{main}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
    );
    zip_entries(&[
        (
            "[Content_Types].xml",
            content_types(&[
                (
                    "/xl/workbook.xml".to_owned(),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                ),
                (
                    "/xl/worksheets/sheet1.xml".to_owned(),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
                ),
            ]),
        ),
        ("_rels/.rels", rels(&[("rId1", OFFICE_DOC_REL, "xl/workbook.xml".to_owned())])),
        ("xl/workbook.xml", workbook.into_bytes()),
        (
            "xl/_rels/workbook.xml.rels",
            rels(&[(
                "rId1",
                "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet",
                "worksheets/sheet1.xml".to_owned(),
            )]),
        ),
        ("xl/worksheets/sheet1.xml", sheet.into_bytes()),
    ])
}

const PML: &str = "http://schemas.openxmlformats.org/presentationml/2006/main";
const DML: &str = "http://schemas.openxmlformats.org/drawingml/2006/main";
const R_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const REL_BASE: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

fn theme() -> String {
    let colors: String = [
        ("dk1", "000000"),
        ("lt1", "FFFFFF"),
        ("dk2", "44546A"),
        ("lt2", "E7E6E6"),
        ("accent1", "4472C4"),
        ("accent2", "ED7D31"),
        ("accent3", "A5A5A5"),
        ("accent4", "FFC000"),
        ("accent5", "5B9BD5"),
        ("accent6", "70AD47"),
        ("hlink", "0563C1"),
        ("folHlink", "954F72"),
    ]
    .iter()
    .map(|(n, c)| format!(r#"<a:{n}><a:srgbClr val="{c}"/></a:{n}>"#))
    .collect();
    let fill = r#"<a:solidFill><a:schemeClr val="phClr"/></a:solidFill>"#;
    let line = r#"<a:ln w="9525"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln>"#;
    let effect = "<a:effectStyle><a:effectLst/></a:effectStyle>";
    format!(
        r#"{XML_HEAD}<a:theme xmlns:a="{DML}" name="Ferry"><a:themeElements><a:clrScheme name="Ferry">{colors}</a:clrScheme><a:fontScheme name="Ferry"><a:majorFont><a:latin typeface="Arial"/><a:ea typeface=""/><a:cs typeface=""/></a:majorFont><a:minorFont><a:latin typeface="Arial"/><a:ea typeface=""/><a:cs typeface=""/></a:minorFont></a:fontScheme><a:fmtScheme name="Ferry"><a:fillStyleLst>{fill}{fill}{fill}</a:fillStyleLst><a:lnStyleLst>{line}{line}{line}</a:lnStyleLst><a:effectStyleLst>{effect}{effect}{effect}</a:effectStyleLst><a:bgFillStyleLst>{fill}{fill}{fill}</a:bgFillStyleLst></a:fmtScheme></a:themeElements></a:theme>"#
    )
}

fn text_shape(id: u32, name: &str, y: u32, height: u32, size: u32, lines: &[&str]) -> String {
    let paras: String = lines
        .iter()
        .map(|l| format!(r#"<a:p><a:r><a:rPr lang="en-US" sz="{size}"/><a:t>{}</a:t></a:r></a:p>"#, esc(l)))
        .collect();
    let paras = if paras.is_empty() { "<a:p/>".to_owned() } else { paras };
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="{name}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr><a:xfrm><a:off x="457200" y="{y}"/><a:ext cx="8229600" cy="{height}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr><p:txBody><a:bodyPr wrap="square"/><a:lstStyle/>{paras}</p:txBody></p:sp>"#
    )
}

fn sp_tree(shapes: &str) -> String {
    format!(
        r#"<p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/><a:chOff x="0" y="0"/><a:chExt cx="0" cy="0"/></a:xfrm></p:grpSpPr>{shapes}</p:spTree>"#
    )
}

fn pptx(slides: &[Vec<&str>]) -> Result<Vec<u8>, ExportError> {
    let empty: Vec<&str> = Vec::new();
    let slides: Vec<&Vec<&str>> = if slides.is_empty() { vec![&empty] } else { slides.iter().collect() };
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut overrides = vec![
        (
            "/ppt/presentation.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        ),
        (
            "/ppt/slideMasters/slideMaster1.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.presentationml.slideMaster+xml",
        ),
        (
            "/ppt/slideLayouts/slideLayout1.xml".to_owned(),
            "application/vnd.openxmlformats-officedocument.presentationml.slideLayout+xml",
        ),
        ("/ppt/theme/theme1.xml".to_owned(), "application/vnd.openxmlformats-officedocument.theme+xml"),
    ];
    let mut slide_ids = String::new();
    let mut pres_rels = vec![
        ("rId1".to_owned(), format!("{REL_BASE}/slideMaster"), "slideMasters/slideMaster1.xml".to_owned()),
        ("rId2".to_owned(), format!("{REL_BASE}/theme"), "theme/theme1.xml".to_owned()),
    ];
    for (i, slide) in slides.iter().enumerate() {
        let n = i + 1;
        let (title, body) = match slide.split_first() {
            Some((t, b)) => (vec![*t], b.to_vec()),
            None => (Vec::new(), Vec::new()),
        };
        let shapes = text_shape(2, "Title", 457200, 1143000, 3600, &title)
            + &text_shape(3, "Body", 1828800, 4114800, 2000, &body);
        let xml = format!(
            r#"{XML_HEAD}<p:sld xmlns:a="{DML}" xmlns:r="{R_NS}" xmlns:p="{PML}"><p:cSld>{}</p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"#,
            sp_tree(&shapes)
        );
        entries.push((format!("ppt/slides/slide{n}.xml"), xml.into_bytes()));
        entries.push((
            format!("ppt/slides/_rels/slide{n}.xml.rels"),
            rels(&[("rId1", &format!("{REL_BASE}/slideLayout"), "../slideLayouts/slideLayout1.xml".to_owned())]),
        ));
        overrides.push((
            format!("/ppt/slides/slide{n}.xml"),
            "application/vnd.openxmlformats-officedocument.presentationml.slide+xml",
        ));
        let rid = format!("rId{}", n + 2);
        slide_ids.push_str(&format!(r#"<p:sldId id="{}" r:id="{rid}"/>"#, 255 + n));
        pres_rels.push((rid, format!("{REL_BASE}/slide"), format!("slides/slide{n}.xml")));
    }
    let presentation = format!(
        r#"{XML_HEAD}<p:presentation xmlns:a="{DML}" xmlns:r="{R_NS}" xmlns:p="{PML}"><p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst><p:sldIdLst>{slide_ids}</p:sldIdLst><p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>"#
    );
    let master = format!(
        r#"{XML_HEAD}<p:sldMaster xmlns:a="{DML}" xmlns:r="{R_NS}" xmlns:p="{PML}"><p:cSld>{}</p:cSld><p:clrMap bg1="lt1" tx1="dk1" bg2="lt2" tx2="dk2" accent1="accent1" accent2="accent2" accent3="accent3" accent4="accent4" accent5="accent5" accent6="accent6" hlink="hlink" folHlink="folHlink"/><p:sldLayoutIdLst><p:sldLayoutId id="2147483649" r:id="rId1"/></p:sldLayoutIdLst></p:sldMaster>"#,
        sp_tree("")
    );
    let layout = format!(
        r#"{XML_HEAD}<p:sldLayout xmlns:a="{DML}" xmlns:r="{R_NS}" xmlns:p="{PML}" type="blank"><p:cSld name="Blank">{}</p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sldLayout>"#,
        sp_tree("")
    );
    let pres_rels: Vec<(&str, &str, String)> =
        pres_rels.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.clone())).collect();
    let mut all: Vec<(String, Vec<u8>)> = vec![
        ("[Content_Types].xml".to_owned(), content_types(&overrides)),
        ("_rels/.rels".to_owned(), rels(&[("rId1", OFFICE_DOC_REL, "ppt/presentation.xml".to_owned())])),
        ("ppt/presentation.xml".to_owned(), presentation.into_bytes()),
        ("ppt/_rels/presentation.xml.rels".to_owned(), rels(&pres_rels)),
        ("ppt/slideMasters/slideMaster1.xml".to_owned(), master.into_bytes()),
        (
            "ppt/slideMasters/_rels/slideMaster1.xml.rels".to_owned(),
            rels(&[
                ("rId1", &format!("{REL_BASE}/slideLayout"), "../slideLayouts/slideLayout1.xml".to_owned()),
                ("rId2", &format!("{REL_BASE}/theme"), "../theme/theme1.xml".to_owned()),
            ]),
        ),
        ("ppt/slideLayouts/slideLayout1.xml".to_owned(), layout.into_bytes()),
        (
            "ppt/slideLayouts/_rels/slideLayout1.xml.rels".to_owned(),
            rels(&[("rId1", &format!("{REL_BASE}/slideMaster"), "../slideMasters/slideMaster1.xml".to_owned())]),
        ),
        ("ppt/theme/theme1.xml".to_owned(), theme().into_bytes()),
    ];
    all.extend(entries);
    zip_entries(&all)
}

fn odf(mime: &str, body: &str) -> Result<Vec<u8>, ExportError> {
    let content = format!(
        r#"{XML_HEAD}<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.3"><office:body>{body}</office:body></office:document-content>"#
    );
    let manifest = format!(
        r#"{XML_HEAD}<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#
    );
    zip_entries(&[
        ("mimetype", mime.as_bytes().to_vec()),
        ("content.xml", content.into_bytes()),
        ("META-INF/manifest.xml", manifest.into_bytes()),
    ])
}

fn odt(lines: &[&str]) -> Result<Vec<u8>, ExportError> {
    let paras: String = lines.iter().map(|l| format!("<text:p>{}</text:p>", esc(l))).collect();
    odf(ODT, &format!("<office:text>{paras}</office:text>"))
}

fn ods(rows: &[Vec<String>]) -> Result<Vec<u8>, ExportError> {
    let body: String = rows
        .iter()
        .map(|r| {
            let cells: String = r
                .iter()
                .map(|c| match c.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => format!(
                        r#"<table:table-cell office:value-type="float" office:value="{n}"><text:p>{}</text:p></table:table-cell>"#,
                        esc(c)
                    ),
                    _ => format!(r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#, esc(c)),
                })
                .collect();
            format!("<table:table-row>{cells}</table:table-row>")
        })
        .collect();
    odf(
        ODS,
        &format!(r#"<office:spreadsheet><table:table table:name="Sheet1">{body}</table:table></office:spreadsheet>"#),
    )
}

fn odp(slides: &[Vec<&str>]) -> Result<Vec<u8>, ExportError> {
    let pages: String = slides
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let paras: String = s.iter().map(|l| format!("<text:p>{}</text:p>", esc(l))).collect();
            format!(
                r#"<draw:page draw:name="Slide {}"><draw:frame svg:x="1cm" svg:y="1cm" svg:width="24cm" svg:height="16cm"><draw:text-box>{paras}</draw:text-box></draw:frame></draw:page>"#,
                i + 1
            )
        })
        .collect();
    odf(ODP, &format!("<office:presentation>{pages}</office:presentation>"))
}

fn rtf(lines: &[&str]) -> String {
    let mut out = String::from("{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Helvetica;}}\\f0\\fs22\n");
    for l in lines {
        for c in l.chars() {
            match c {
                '\\' | '{' | '}' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_ascii() => out.push(c),
                // RTF \uN takes a signed 16-bit value; characters beyond the BMP become '?'.
                c => match i16::try_from(c as u32).ok().or_else(|| u16::try_from(c as u32).ok().map(|u| u as i16)) {
                    Some(n) => out.push_str(&format!("\\u{n}?")),
                    None => out.push('?'),
                },
            }
        }
        out.push_str("\\par\n");
    }
    out.push('}');
    out
}

/// A PDF with the lines in Helvetica, 50 lines a page. Non-Latin-1 characters become '?'.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let pages: Vec<&[&str]> = if lines.is_empty() { vec![&[]] } else { lines.chunks(50).collect() };
    let mut objects: Vec<Vec<u8>> = Vec::new();
    // 1: catalog, 2: pages, 3: font, then (page, content) pairs.
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).into_bytes());
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec());
    for (i, page) in pages.iter().enumerate() {
        let mut stream = Vec::from(&b"BT /F1 11 Tf 14 TL 72 770 Td\n"[..]);
        for line in *page {
            stream.push(b'(');
            for c in line.chars() {
                match c {
                    '(' | ')' | '\\' => {
                        stream.push(b'\\');
                        stream.push(c as u8);
                    }
                    c if (c as u32) < 0x20 => stream.push(b' '),
                    c if (c as u32) < 0x100 => stream.push(c as u32 as u8),
                    _ => stream.push(b'?'),
                }
            }
            stream.extend_from_slice(b") Tj T*\n");
        }
        stream.extend_from_slice(b"ET");
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let mut content = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
        content.extend_from_slice(&stream);
        content.extend_from_slice(b"\nendstream");
        objects.push(content);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(obj);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

fn epub(title: &str, lines: &[&str]) -> Result<Vec<u8>, ExportError> {
    let paras: String = lines.iter().map(|l| format!("<p>{}</p>", esc(l))).collect();
    let title = esc(title);
    let chapter = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head><body>{paras}</body></html>"#
    );
    let nav = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><head><title>{title}</title></head><body><nav epub:type="toc"><ol><li><a href="chapter.xhtml">{title}</a></li></ol></nav></body></html>"#
    );
    let opf = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">urn:ferry:emulator</dc:identifier><dc:title>{title}</dc:title><dc:language>en</dc:language><meta property="dcterms:modified">2024-01-01T00:00:00Z</meta></metadata><manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/><item id="chapter" href="chapter.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="chapter"/></spine></package>"#
    );
    let container = r#"<?xml version="1.0" encoding="UTF-8"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;
    zip_entries(&[
        ("mimetype", EPUB.as_bytes().to_vec()),
        ("META-INF/container.xml", container.as_bytes().to_vec()),
        ("OEBPS/content.opf", opf.into_bytes()),
        ("OEBPS/nav.xhtml", nav.into_bytes()),
        ("OEBPS/chapter.xhtml", chapter.into_bytes()),
    ])
}

fn svg(lines: &[&str]) -> String {
    let texts: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            format!(
                r#"<text x="24" y="{}" font-family="Arial" font-size="{}">{}</text>"#,
                48 + i * 32,
                if i == 0 { 28 } else { 18 },
                esc(l)
            )
        })
        .collect();
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="540" viewBox="0 0 960 540"><rect width="960" height="540" fill="white"/>{texts}</svg>"#
    )
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// A white grayscale PNG (zlib with stored blocks: no compressor needed).
fn png_blank(width: u32, height: u32) -> Vec<u8> {
    let row = width as usize + 1; // filter byte + one gray byte per pixel
    let mut raw = Vec::with_capacity(row * height as usize);
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(0xffu8, width as usize));
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grayscale
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A uniform mid-gray baseline JPEG: every 8x8 block has a zero DC difference and no AC terms, so one
/// 1-bit Huffman code per table is enough.
fn jpeg_gray(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    // DQT: table 0, all ones.
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    out.extend(std::iter::repeat_n(1u8, 64));
    // SOF0: 8-bit, one component, no subsampling, quant table 0.
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    // DHT: DC table 0 and AC table 0, each with one code of length 1 for symbol 0.
    for class in [0x00u8, 0x10] {
        out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class, 1]);
        out.extend_from_slice(&[0; 15]);
        out.push(0);
    }
    // SOS: one component using tables 0/0.
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    let blocks = usize::from(width.div_ceil(8)) * usize::from(height.div_ceil(8));
    let bits = blocks * 2; // DC "0" + EOB "0"
    let mut data = vec![0u8; bits.div_ceil(8)];
    let pad = data.len() * 8 - bits;
    if pad > 0
        && let Some(last) = data.last_mut()
    {
        *last |= (1u8 << pad) - 1;
    }
    out.extend_from_slice(&data);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: &[u8], name: &str) -> String {
        read_entry(&mut unzip(bytes).expect("a zip"), name).expect("entry")
    }

    #[test]
    fn docx_round_trip() {
        let out = export(DOCUMENT, "Notes", "Hello & <world>\nSecond".as_bytes(), DOCX).expect("docx");
        assert!(entry(&out, "word/document.xml").contains("Hello &amp; &lt;world&gt;"));
        assert_eq!(import(DOCUMENT, Some(DOCX), &out), b"Hello & <world>\nSecond");
    }

    #[test]
    fn xlsx_round_trip_and_csv() {
        let csv = "name,qty\r\n\"a, b\",3\r\nc,\"say \"\"hi\"\"\"";
        let out = export(SPREADSHEET, "S", csv.as_bytes(), XLSX).expect("xlsx");
        assert_eq!(String::from_utf8(import(SPREADSHEET, Some(XLSX), &out)).expect("utf8"), csv);
        assert_eq!(export(SPREADSHEET, "S", csv.as_bytes(), "text/csv").expect("csv"), csv.as_bytes());
        let tsv = export(SPREADSHEET, "S", csv.as_bytes(), "text/tab-separated-values").expect("tsv");
        assert!(String::from_utf8(tsv).expect("utf8").starts_with("name\tqty\na, b\t3"));
    }

    #[test]
    fn pptx_round_trip() {
        let text = "Title one\nPoint a\n\nTitle two\nPoint b";
        let out = export(PRESENTATION, "P", text.as_bytes(), PPTX).expect("pptx");
        assert!(entry(&out, "ppt/slides/slide2.xml").contains("Title two"));
        assert_eq!(import(PRESENTATION, Some(PPTX), &out), text.as_bytes());
    }

    #[test]
    fn odf_and_others_are_real_files() {
        let odt = export(DOCUMENT, "N", b"Hi there", ODT).expect("odt");
        assert_eq!(entry(&odt, "mimetype"), ODT);
        assert_eq!(import(DOCUMENT, Some(ODT), &odt), b"Hi there");
        let pdf = export(DOCUMENT, "N", b"Hi (there)", PDF).expect("pdf");
        assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
        let needle = b"(Hi \\(there\\)) Tj";
        assert!(pdf.windows(needle.len()).any(|w| w == needle));
        let rtf = export(DOCUMENT, "N", b"a{b}\nc", "application/rtf").expect("rtf");
        assert_eq!(import(DOCUMENT, Some("application/rtf"), &rtf), b"a{b}\nc");
        let png = export(PRESENTATION, "P", b"x", "image/png").expect("png");
        assert!(png.starts_with(b"\x89PNG"));
        let jpeg = export(PRESENTATION, "P", b"x", "image/jpeg").expect("jpeg");
        assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));
        assert!(matches!(export(DOCUMENT, "N", b"x", "image/png"), Err(ExportError::Unsupported)));
        assert!(export(DOCUMENT, "N", b"x", EPUB).is_ok());
    }

    #[test]
    fn html_and_tsv_import() {
        assert_eq!(
            import(
                DOCUMENT,
                Some("text/html"),
                b"<html><head><title>x</title></head><body><p>One &amp; two</p><p>Three</p></body></html>"
            ),
            b"One & two\nThree"
        );
        assert_eq!(import(SPREADSHEET, Some("text/tab-separated-values"), b"a\tb\n1\t2"), b"a,b\r\n1,2");
    }
}
