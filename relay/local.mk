# relay/: see the folder's files; added to by later issues.
