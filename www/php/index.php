<?php
// PHP through php-cgi: the page localserver runs for /php/ (index index.php).
// php-cgi refuses to run a script unless the server sets REDIRECT_STATUS and
// SCRIPT_FILENAME (cgi.force_redirect), which localserver does.
$q = isset($_GET['q']) ? $_GET['q'] : '';
$e = fn($s) => htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
?>
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>PHP · localserver</title>
  <link rel="stylesheet" href="/style.css">
  <script src="/session.js" defer></script>
  <link rel="icon" href="/img/logo.svg" type="image/svg+xml">
</head>
<body>
  <header class="site">
    <div class="bar">
      <a class="brand" href="/"><img src="/img/logo.svg" width="28" height="28" alt="">localserver</a>
      <nav>
        <a href="/">Home</a>
        <a href="/about.html">About</a>
        <a href="/files/">Files</a>
        <a href="/docs/">Docs</a>
        <a href="/upload.html">Uploads</a>
        <a href="/cgi-bin/form.py">CGI</a>
        <a href="/php/" aria-current="page">PHP</a>
      </nav>
      <div class="who" id="user-badge"><a class="signin" href="/cgi-bin/login.py">Sign in</a></div>
    </div>
  </header>

  <main>
    <h1>PHP <?= $e(PHP_VERSION) ?></h1>
    <p class="lead">
      This page is <code>www/php/index.php</code>, run by
      <code><?= $e(PHP_SAPI) ?></code> as a CGI script for each request.
    </p>

    <h2>A query string</h2>
    <form method="get" action="<?= $e($_SERVER['SCRIPT_NAME']) ?>">
      <p><label>Search for <input name="q" value="<?= $e($q) ?>"></label>
         <button type="submit">Go</button></p>
    </form>
<?php if ($q !== ''): ?>
    <p>You asked for <strong><?= $e($q) ?></strong>
       (<code>QUERY_STRING=<?= $e($_SERVER['QUERY_STRING']) ?></code>).</p>
<?php endif; ?>

    <h2>What the server told PHP</h2>
    <table>
<?php foreach (['REQUEST_METHOD', 'REQUEST_URI', 'SCRIPT_NAME', 'SCRIPT_FILENAME',
                'QUERY_STRING', 'SERVER_SOFTWARE', 'SERVER_PROTOCOL', 'GATEWAY_INTERFACE',
                'REMOTE_ADDR', 'REDIRECT_STATUS', 'SESSION_user', 'SESSION_visits'] as $name): ?>
      <tr><th><?= $e($name) ?></th><td><code><?= $e($_SERVER[$name] ?? '') ?></code></td></tr>
<?php endforeach; ?>
    </table>

    <p><a href="form.php">A form that posts to itself →</a></p>
  </main>

  <footer class="site">localserver demo site · <code>www/php/index.php</code></footer>
</body>
</html>
