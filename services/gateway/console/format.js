// Small formatting helpers shared by the views.

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '';
  let value = Number(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A short kind of file for the list, from its MIME type. */
export function kind(mime, isFolder) {
  if (isFolder) return 'Folder';
  if (!mime) return 'File';
  const workspace = {
    'application/vnd.google-apps.document': 'Google Doc',
    'application/vnd.google-apps.spreadsheet': 'Google Sheet',
    'application/vnd.google-apps.presentation': 'Google Slides',
    'application/vnd.google-apps.drawing': 'Google Drawing',
    'application/vnd.google-apps.shortcut': 'Shortcut',
  };
  if (workspace[mime]) return workspace[mime];
  if (mime.startsWith('application/vnd.google-apps.')) return 'Google file';
  const [type, sub] = mime.split('/');
  if (type === 'image' || type === 'video' || type === 'audio' || type === 'text') {
    return `${type[0].toUpperCase()}${type.slice(1)}${sub ? ` (${sub.toUpperCase().slice(0, 12)})` : ''}`;
  }
  if (mime === 'application/pdf') return 'PDF';
  return 'File';
}
