// srsd player: plays ?app=&stream=[&vhost=][&mode=flv|hls] in the page. HTTP-FLV with
// mpegts.js, HLS with hls.js (or the browser's own HLS when it has no MSE). ?vod=PATH plays a
// recording the HTTP server serves (http_server.vod: .flv with mpegts.js, .mp4 natively).
// The libraries come from lib/ (packaging/web-assets.sh); the page says how to get them when
// they are missing.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var q = new URLSearchParams(location.search);
  var app = q.get('app') || 'live', stream = q.get('stream') || 'livestream';
  var vhost = q.get('vhost') || '__defaultVhost__';
  var vod = q.get('vod');
  var video = $('video'), info = null, current = null;
  // For tests and the curious: what plays now.
  window.srsdPlayer = { mode: null, video: video, error: null };

  function note(html) { $('note').innerHTML = html; $('note').hidden = !html; }
  function fail(msg) { window.srsdPlayer.error = msg; note(msg); }
  var HOWTO = 'Install them with <code>packaging/web-assets.sh /usr/share/srsd/www</code> ' +
    '(or <code>target/www</code> in a source checkout), or point <code>console.www</code> at ' +
    'a directory holding <code>lib/mpegts.js</code> and <code>lib/hls.min.js</code>.';

  function loadScript(src) {
    return new Promise(function (ok, bad) {
      var s = document.createElement('script');
      s.src = src;
      s.onload = ok;
      s.onerror = function () { bad(new Error(src + ' did not load')); };
      document.head.appendChild(s);
    });
  }

  function urlOf(mode) {
    var vs = info.vhosts || [], vh = null, host = location.hostname;
    if (host.indexOf(':') >= 0) host = '[' + host + ']';
    for (var i = 0; i < vs.length; i++) if (vs[i].name === vhost) vh = vs[i];
    for (i = 0; !vh && i < vs.length; i++) if (vs[i].name === '__defaultVhost__') vh = vs[i];
    if (!vh || !info.http_port) return null;
    var t = mode === 'flv' ? vh.remux : vh.hls;
    if (!t || (mode === 'flv' && !/\.flv$/.test(t))) return null;
    var h = mode === 'flv' && vh.remux_host ? vh.remux_host : host;
    return location.protocol + '//' + h + ':' + info.http_port +
      t.replace(/\[app\]/g, app).replace(/\[stream\]/g, stream);
  }

  function stop() {
    if (current) { try { current.destroy(); } catch (e) { /* already gone */ } }
    current = null;
    video.removeAttribute('src');
    video.load();
  }

  function start(mode) {
    stop();
    note('');
    window.srsdPlayer.mode = mode;
    window.srsdPlayer.error = null;
    $('flv').className = mode === 'flv' ? 'on' : '';
    $('hls').className = mode === 'hls' ? 'on' : '';
    q.set('mode', mode);
    history.replaceState(null, '', '?' + q.toString());
    var url = urlOf(mode);
    $('url').textContent = url || '';
    if (!url) {
      return fail(mode === 'flv'
        ? 'HTTP-FLV is off for this vhost: set <code>[vhost.NAME.http_remux] enabled = true</code>.'
        : 'HLS is off for this vhost: set <code>[vhost.NAME.hls] enabled = true</code>.');
    }
    if (mode === 'flv') startFlv(url); else startHls(url);
  }

  // A recording on the HTTP server: its path, on this host and the HTTP port.
  function startVod() {
    var host = location.hostname;
    if (host.indexOf(':') >= 0) host = '[' + host + ']';
    var path = vod.charAt(0) === '/' ? vod : '/' + vod;
    var url = location.protocol + '//' + host + ':' + info.http_port + encodeURI(path);
    window.srsdPlayer.mode = 'vod';
    $('url').textContent = url;
    if (/\.mp4$/i.test(path)) {
      video.src = url;
      current = { destroy: function () { video.removeAttribute('src'); } };
      $('engine').textContent = 'the browser (MP4)';
      return play();
    }
    startFlv(url, false);
  }

  function startFlv(url, live) {
    loadScript('lib/mpegts.js').then(function () {
      var m = window.mpegts;
      if (!m.getFeatureList().mseLivePlayback) return fail('This browser cannot play HTTP-FLV (no MSE); try HLS.');
      m.LoggingControl.enableVerbose = false;
      m.LoggingControl.enableDebug = false;
      m.LoggingControl.enableInfo = false;
      var p = m.createPlayer({ type: 'flv', isLive: live !== false, url: url },
        { enableWorker: false, lazyLoad: false, liveBufferLatencyChasing: true,
          liveBufferLatencyMaxLatency: 3, liveBufferLatencyMinRemain: 0.5 });
      p.on(m.Events.ERROR, function (type, detail) { fail('HTTP-FLV: ' + type + ' ' + detail); });
      p.attachMediaElement(video);
      p.load();
      current = p;
      $('engine').textContent = 'mpegts.js ' + (m.version || '');
      play();
    }, function () { fail('The HTTP-FLV player library (mpegts.js) is not installed. ' + HOWTO); });
  }

  function startHls(url) {
    var native = function () {
      video.src = url;
      current = { destroy: function () { video.removeAttribute('src'); } };
      $('engine').textContent = 'the browser\'s own HLS';
      play();
    };
    loadScript('lib/hls.min.js').then(function () {
      var H = window.Hls;
      if (!H.isSupported()) {
        if (video.canPlayType('application/vnd.apple.mpegurl')) return native();
        return fail('This browser cannot play HLS.');
      }
      var h = new H({ lowLatencyMode: false, liveSyncDurationCount: 2 });
      h.on(H.Events.ERROR, function (ev, d) { if (d.fatal) fail('HLS: ' + d.type + ' ' + d.details); });
      h.loadSource(url);
      h.attachMedia(video);
      current = h;
      $('engine').textContent = 'hls.js ' + (H.version || '');
      play();
    }, function () {
      if (video.canPlayType('application/vnd.apple.mpegurl')) return native();
      fail('The HLS player library (hls.js) is not installed. ' + HOWTO);
    });
  }

  function play() {
    var p = video.play();
    if (p && p.catch) p.catch(function () { /* autoplay refused: the controls start it */ });
  }

  // Latency: how far behind the live edge the picture is. hls.js knows it from the playlist;
  // for HTTP-FLV it is what the player has buffered ahead of the picture.
  setInterval(function () {
    var b = video.buffered, ahead = b.length ? b.end(b.length - 1) - video.currentTime : 0;
    var l = current && typeof current.latency === 'number' && isFinite(current.latency)
      ? current.latency : ahead;
    var mode = window.srsdPlayer.mode;
    $('latency').textContent = !mode ? ''
      : mode === 'vod' ? 't ' + video.currentTime.toFixed(1) + ' s'
        : 'latency ' + Math.max(0, l).toFixed(1) + ' s · t ' + video.currentTime.toFixed(1) + ' s';
  }, 500);

  document.querySelector('nav').addEventListener('click', function (ev) {
    var mode = ev.target.getAttribute('data-mode');
    if (!mode) return;
    ev.preventDefault();
    // Before info.json has arrived, the choice waits for it.
    if (info) start(mode); else q.set('mode', mode);
  });

  $('title').textContent = vod || (vhost !== '__defaultVhost__' ? vhost : '') + '/' + app + '/' + stream;
  document.title = (vod ? vod.split('/').pop() : stream) + ' · srsd';
  fetch('info.json', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (i) {
    info = i;
    if (!info.libs.mpegts && !info.libs.hls) {
      note('The player libraries are not installed. ' + HOWTO);
    }
    if (vod) {
      // A recording has no live modes to switch between.
      document.querySelector('nav').hidden = true;
      return startVod();
    }
    var mode = q.get('mode');
    if (mode !== 'flv' && mode !== 'hls') mode = urlOf('flv') ? 'flv' : 'hls';
    start(mode);
  }).catch(function (e) { fail('cannot read info.json: ' + e.message); });
})();
