// The example app's script: marks the page as loaded (served like style.css).
document.documentElement.dataset.loaded = "yes";
