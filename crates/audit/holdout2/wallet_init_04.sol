pragma solidity ^0.4.24;

contract WalletLibrary {
    address public owner;

    function initWallet(address _owner) public {
        owner = _owner; // expect: access-control
    }

    function () public payable {}

    function kill(address to) public {
        require(msg.sender == owner);
        selfdestruct(to);
    }
}
