// Small behaviours every dashboard page shares. The CSP allows no inline script, so what
// would otherwise be onclick attributes lives here, attached by delegation.
(function () {
  'use strict';

  function cookie(name) {
    const prefix = name + '=';
    const found = document.cookie.split('; ').find((c) => c.startsWith(prefix));
    return found ? decodeURIComponent(found.slice(prefix.length)) : '';
  }

  // htmx requests carry the CSRF token as a header; plain forms carry it as a hidden field.
  document.addEventListener('htmx:configRequest', (e) => {
    const token = cookie('helvetia_csrf');
    if (token) e.detail.headers['X-CSRF-Token'] = token;
  });

  // <form data-confirm="…"> (or a submit button with data-confirm) asks before submitting.
  // Capturing on the document runs before htmx's own listener on the form, so a refusal
  // stops htmx forms too.
  document.addEventListener(
    'submit',
    (e) => {
      const text = e.submitter?.dataset.confirm || e.target.dataset.confirm;
      if (text && !window.confirm(text)) {
        e.preventDefault();
        e.stopPropagation();
      }
    },
    true,
  );

  // [data-copy] copies its value. navigator.clipboard exists only in secure contexts, and a
  // fresh instance may still be served over plain HTTP: execCommand is the fallback there.
  let copyStatus;
  document.addEventListener('click', async (e) => {
    const button = e.target.closest('[data-copy]');
    if (!button) return;
    const value = button.dataset.copy;
    let copied = false;
    try {
      await navigator.clipboard.writeText(value);
      copied = true;
    } catch {
      const area = document.createElement('textarea');
      area.value = value;
      area.setAttribute('readonly', '');
      area.className = 'sr-only';
      document.body.append(area);
      area.select();
      copied = document.execCommand('copy');
      area.remove();
      button.focus();
    }
    if (!copyStatus) {
      copyStatus = document.createElement('span');
      copyStatus.className = 'sr-only';
      copyStatus.setAttribute('role', 'status');
      document.body.append(copyStatus);
    }
    copyStatus.textContent = copied ? 'Copied to clipboard' : 'Copying failed';
    if (copied) {
      // The stylesheet shows a check mark for one animation.
      button.classList.remove('copied');
      void button.offsetWidth; // restarts the animation on a second copy
      button.classList.add('copied');
      button.addEventListener('animationend', () => button.classList.remove('copied'), {
        once: true,
      });
    }
  });

  // <time datetime="…" data-relative> reads "3 minutes ago"; its title keeps the exact time.
  const relative = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, {
    numeric: 'auto',
  });
  const absolute = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: 'medium',
    timeStyle: 'medium',
  });
  const UNITS = [
    ['year', 31536000],
    ['month', 2592000],
    ['week', 604800],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ];

  function describe(seconds) {
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size) return relative.format(Math.trunc(seconds / size), unit);
    }
    return Math.abs(seconds) < 10
      ? relative.format(0, 'second')
      : relative.format(Math.trunc(seconds), 'second');
  }

  function updateTimes(root) {
    const now = Date.now();
    root.querySelectorAll('time[data-relative]').forEach((t) => {
      const at = Date.parse(t.getAttribute('datetime'));
      if (Number.isNaN(at)) return;
      if (!t.title) t.title = absolute.format(at);
      t.textContent = describe((at - now) / 1000);
    });
  }

  updateTimes(document);
  document.addEventListener('htmx:load', (e) => updateTimes(e.target));
  setInterval(() => updateTimes(document), 30000);
})();
