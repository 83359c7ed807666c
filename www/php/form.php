<?php
// A form that posts to itself: PHP reads the body the server streams to
// php-cgi's stdin (URL-encoded or multipart, CONTENT_LENGTH always set).
$e = fn($s) => htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
$posted = $_SERVER['REQUEST_METHOD'] === 'POST';
$name = $_POST['name'] ?? 'Ada Lovelace';
$lang = $_POST['lang'] ?? 'Rust';
$comment = $_POST['comment'] ?? '';
?>
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>PHP form · localserver</title>
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
    <h1>A PHP form</h1>
<?php if ($posted): ?>
    <h2>You sent</h2>
    <table>
<?php foreach ($_POST as $k => $v): ?>
      <tr><th><?= $e($k) ?></th><td><?= is_array($v) ? $e(implode(', ', $v)) : nl2br($e($v)) ?></td></tr>
<?php endforeach; ?>
<?php foreach ($_FILES as $k => $f): ?>
      <tr><th><?= $e($k) ?></th><td>file <code><?= $e($f['name']) ?></code>, <?= (int) $f['size'] ?> bytes</td></tr>
<?php endforeach; ?>
    </table>
    <p class="note"><?= (int) ($_SERVER['CONTENT_LENGTH'] ?? 0) ?> bytes of
      <code><?= $e($_SERVER['CONTENT_TYPE'] ?? '') ?></code>.</p>
<?php endif; ?>

    <form method="post" action="<?= $e($_SERVER['SCRIPT_NAME']) ?>" enctype="multipart/form-data">
      <p><label>Name <input name="name" value="<?= $e($name) ?>"></label></p>
      <p><label>Language <input name="lang" value="<?= $e($lang) ?>"></label></p>
      <p><label>Comment<br><textarea name="comment" rows="3" cols="40"><?= $e($comment) ?></textarea></label></p>
      <p><label>A file (optional) <input type="file" name="attachment"></label></p>
      <p><button type="submit">Send</button></p>
    </form>
    <p><a href="./">← PHP home</a></p>
  </main>

  <footer class="site">localserver demo site · <code>www/php/form.php</code></footer>
</body>
</html>
