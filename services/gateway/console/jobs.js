// The jobs panel: one card per import or export job, kept live from the job's `/events` stream (polling when
// too many streams are open), with per-file results, failures and a cancel button.

import { api, readEvents } from './api.js';
import { h, replace, setState } from './dom.js';
import { plural, when } from './format.js';

const TERMINAL = new Set(['completed', 'partial', 'failed', 'cancelled']);
/** Browsers keep ~6 connections per origin; leave room for the rest of the console. */
const MAX_STREAMS = 3;
const POLL_MS = 2000;
const MAX_BACKOFF_MS = 30_000;
/** Consecutive failures to read progress before the card stops trying and offers a button. */
const MAX_FAILURES = 12;
const ITEMS_SHOWN = 200;
const RECENT_JOBS = 10;

const STATUS_WORDS = {
  pending: 'Waiting',
  in_progress: 'In progress',
  completed: 'Completed',
  partial: 'Partly failed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
const ITEM_WORDS = {
  pending: 'Waiting',
  in_progress: 'Transferring',
  completed: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** Only our own fixed words become class names. */
const statusClass = (status) => (Object.hasOwn(STATUS_WORDS, status) || Object.hasOwn(ITEM_WORDS, status) ? status : 'unknown');
const count = (n) => (Number.isFinite(Number(n)) ? Number(n) : 0);

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export function createJobs({ list, state, onFinished }) {
  const cards = new Map();
  let streams = 0;
  let session = new AbortController();

  class JobCard {
    constructor(jobId, { label, expanded }) {
      this.jobId = jobId;
      this.job = null;
      this.finished = false;
      this.seenRunning = false;
      this.reported = false;
      this.expanded = Boolean(expanded);
      this.autoExpanded = false;
      this.itemsLoading = null;
      this.itemsDirty = false;
      this.lastSeen = '';
      this.title = h('h3', { class: 'job-title' }, label || 'Job');
      this.badge = h('span', { class: 'badge pending' }, STATUS_WORDS.pending);
      this.progress = h('progress', {
        'data-testid': 'job-progress',
        max: '1',
        value: '0',
        dataset: { completed: 0, failed: 0, total: 0 },
        'aria-label': 'Progress',
      });
      this.counts = h('p', { class: 'job-counts' }, 'Waiting for the first progress update…');
      this.error = h('p', { class: 'job-error', hidden: true });
      this.notice = h('p', { class: 'state', hidden: true });
      this.cancelButton = h('button', { type: 'button', class: 'ghost small', onclick: () => this.cancel() }, 'Cancel');
      this.toggle = h('button', {
        type: 'button',
        class: 'link small',
        'aria-expanded': 'false',
        onclick: () => this.setExpanded(!this.expanded),
      }, 'Show files');
      this.items = h('ol', { class: 'job-items', hidden: true, 'aria-label': 'Files of this job' });
      this.itemsState = h('p', { class: 'state', hidden: true });
      this.meta = h('p', { class: 'muted small' }, jobId);
      this.el = h('li', { class: 'job', 'data-testid': 'job', dataset: { jobId, status: 'pending' } },
        h('div', { class: 'job-head' }, this.title, this.badge),
        this.progress,
        this.counts,
        this.error,
        this.notice,
        h('div', { class: 'job-actions' }, this.toggle, this.cancelButton),
        this.itemsState,
        this.items,
        this.meta);
      this.setExpanded(this.expanded);
    }

    update(job) {
      if (!job || typeof job !== 'object') return;
      this.job = job;
      const status = String(job.status || 'pending');
      const type = job.type === 'export' ? 'export' : 'import';
      const total = count(job.total_files);
      const done = count(job.completed_files);
      const failed = count(job.failed_files);
      this.el.dataset.status = status;
      this.el.dataset.type = type;
      this.badge.className = `badge ${statusClass(status)}`;
      this.badge.textContent = STATUS_WORDS[status] || status;
      this.title.textContent = `${type === 'export' ? 'Export' : 'Import'} of ${plural(total, 'file', 'files')}`;
      this.progress.max = Math.max(total, 1);
      this.progress.value = Math.min(done + failed, Math.max(total, 1));
      this.progress.dataset.completed = String(done);
      this.progress.dataset.failed = String(failed);
      this.progress.dataset.total = String(total);
      const verb = type === 'export' ? 'exported' : 'imported';
      const rest = total - done - failed;
      const parts = [`${done} of ${total} ${verb}`];
      if (failed) parts.push(`${failed} failed`);
      if (status === 'cancelled' && rest > 0) parts.push(`${rest} cancelled`);
      this.counts.textContent = parts.join(' · ');
      this.error.hidden = !job.error;
      this.error.textContent = job.error ? String(job.error) : '';
      this.meta.textContent = `${this.jobId} · started ${when(job.created_at)}${job.completed_at ? ` · finished ${when(job.completed_at)}` : ''}`;
      const wasRunning = this.seenRunning;
      this.finished = TERMINAL.has(status);
      if (!this.finished) this.seenRunning = true;
      this.cancelButton.hidden = this.finished;
      if (failed && !this.autoExpanded) {
        // Failures are what a person needs to see: show the files without being asked.
        this.autoExpanded = true;
        if (!this.expanded) this.setExpanded(true);
      }
      const seen = `${status}/${done}/${failed}`;
      if (seen !== this.lastSeen) {
        this.lastSeen = seen;
        if (this.expanded) this.refreshItems();
      }
      // Only a job seen running here changes what the store holds now.
      if (this.finished && wasRunning && !this.reported && onFinished) {
        this.reported = true;
        onFinished(job);
      }
    }

    setExpanded(expanded) {
      this.expanded = expanded;
      this.toggle.setAttribute('aria-expanded', String(expanded));
      this.toggle.textContent = expanded ? 'Hide files' : 'Show files';
      this.items.hidden = !expanded;
      if (!expanded) this.itemsState.hidden = true;
      if (expanded) this.refreshItems();
    }

    /** One request at a time; a change seen meanwhile asks for one more. */
    async refreshItems() {
      if (this.itemsLoading) {
        this.itemsDirty = true;
        return;
      }
      if (!this.items.childElementCount) setState(this.itemsState, 'loading', 'Loading the files…');
      this.itemsLoading = api.get(`/cloud-storage/jobs/${encodeURIComponent(this.jobId)}/items`, { limit: ITEMS_SHOWN }, session.signal);
      try {
        const page = await this.itemsLoading;
        this.renderItems(page);
      } catch (err) {
        if (err.name !== 'AbortError') {
          setState(this.itemsState, 'error', `Could not load the files of this job: ${err.message}`, {
            label: 'Try again',
            run: () => this.refreshItems(),
          });
        }
      } finally {
        this.itemsLoading = null;
      }
      if (this.itemsDirty && this.expanded) {
        this.itemsDirty = false;
        this.refreshItems();
      }
    }

    renderItems(page) {
      const items = Array.isArray(page && page.items) ? page.items : [];
      replace(this.items, items.map((item) => {
        const status = String(item.status || 'pending');
        const failure = item.error_message || item.error_code;
        return h('li', { class: `job-item ${statusClass(status)}`, 'data-testid': 'job-item', dataset: { status } },
          h('span', { class: 'item-name' }, String(item.name || item.image_id || 'file')),
          h('span', { class: `badge ${statusClass(status)}` }, ITEM_WORDS[status] || status),
          failure
            ? h('p', { class: 'item-error' },
              item.error_code ? h('code', {}, String(item.error_code)) : null,
              item.error_code && item.error_message ? ' ' : null,
              item.error_message ? String(item.error_message) : null)
            : null);
      }));
      const total = count(page && page.total_count);
      if (!items.length) setState(this.itemsState, 'empty', 'This job has no files.');
      else if (total > items.length) setState(this.itemsState, '', `Showing the first ${items.length} of ${total} files.`);
      else setState(this.itemsState, '', '');
    }

    async cancel() {
      this.cancelButton.disabled = true;
      try {
        const answer = await api.post(`/cloud-storage/jobs/${encodeURIComponent(this.jobId)}/cancel`);
        this.update(answer.job);
        setState(this.notice, '', String(answer.message || 'Cancelled.'));
      } catch (err) {
        setState(this.notice, 'error', err.code === 'CONFLICT'
          ? 'This job had already finished; there was nothing to cancel.'
          : `Could not cancel: ${err.message}`);
      } finally {
        this.cancelButton.disabled = false;
      }
    }

    /** Follows the job to its end: the event stream when a slot is free, else polling; bounded retries. */
    async follow() {
      const signal = session.signal;
      let failures = 0;
      while (!signal.aborted && !this.finished) {
        try {
          if (streams < MAX_STREAMS) {
            streams += 1;
            try {
              await readEvents(`/cloud-storage/jobs/${encodeURIComponent(this.jobId)}/events`, (name, data) => {
                if ((name === 'progress' || name === 'end') && data) this.update(data.job);
              }, signal);
            } finally {
              streams -= 1;
            }
          } else {
            const answer = await api.get(`/cloud-storage/jobs/${encodeURIComponent(this.jobId)}`, undefined, signal);
            this.update(answer.job);
          }
          failures = 0;
          this.notice.hidden = true;
        } catch (err) {
          if (signal.aborted || err.name === 'AbortError') return;
          failures += 1;
          if (err.status === 404 || err.status === 401 || failures >= MAX_FAILURES) {
            setState(this.notice, 'error', `Progress cannot be read: ${err.message}`, {
              label: 'Try again',
              run: () => this.follow(),
            });
            return;
          }
          setState(this.notice, 'loading', `Live progress interrupted (${err.message}); trying again…`);
        }
        if (!this.finished) await sleep(Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS), signal);
      }
    }
  }

  function refreshEmpty() {
    if (cards.size === 0) {
      setState(state, 'empty', 'No jobs yet. Pick files in Google Drive and import them, or export files from the store: their progress shows here.');
    } else {
      setState(state, '', '');
    }
  }

  function add(jobId, options, atTop) {
    let card = cards.get(jobId);
    if (!card) {
      card = new JobCard(jobId, options);
      cards.set(jobId, card);
      if (atTop) list.prepend(card.el);
      else list.append(card.el);
    }
    refreshEmpty();
    return card;
  }

  return {
    /** A job started from this console: shown first, files visible, followed live. */
    watch(jobId, { label, job } = {}) {
      const card = add(jobId, { label, expanded: true }, true);
      // Started here: its end changes the store even if the first event already says it finished.
      card.seenRunning = true;
      if (job) card.update(job);
      card.follow();
      card.el.scrollIntoView({ block: 'nearest' });
      return card;
    },

    /** The newest jobs of this key's tenant; unfinished ones are followed. */
    async loadRecent() {
      setState(state, 'loading', 'Loading recent jobs…');
      let page;
      try {
        page = await api.get('/cloud-storage/jobs', { limit: RECENT_JOBS }, session.signal);
      } catch (err) {
        if (err.name === 'AbortError') return;
        setState(state, 'error', `Could not load recent jobs: ${err.message}`, { label: 'Try again', run: () => this.loadRecent() });
        return;
      }
      for (const job of Array.isArray(page.items) ? page.items : []) {
        if (!job || !job.job_id || cards.has(job.job_id)) continue;
        const card = add(String(job.job_id), { expanded: false }, false);
        card.update(job);
        if (!card.finished) card.follow();
      }
      refreshEmpty();
    },

    /** Sign-out: stop every stream and forget the cards. */
    reset() {
      session.abort();
      session = new AbortController();
      cards.clear();
      list.replaceChildren();
      refreshEmpty();
    },
  };
}
